package images

import (
	"bytes"
	"strings"
	"testing"
)

func TestSetWriteTable(t *testing.T) {
	s := &Set{Layouts: []Layout{{Name: Probe, Ref: Ref(Probe), Dir: "/l/probe", ManifestDigest: "sha256:aa"}, {Name: ProbeUser, Ref: Ref(ProbeUser), Dir: "/l/user", ManifestDigest: "sha256:bb"}}}
	var b bytes.Buffer
	if err := s.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "NAME REF DIR DIGEST" ||
		strings.Join(strings.Fields(lines[2]), " ") != ProbeUser+" "+Ref(ProbeUser)+" /l/user sha256:bb" {
		t.Errorf("table:\n%s", b.String())
	}
}
