package toolchain_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/orchd/orchd/harness/toolchain"
)

func TestWriteTable(t *testing.T) {
	tc := func(name, v string) *toolchain.Toolchain {
		c := func(n string) toolchain.Component {
			return toolchain.Component{Name: n, Path: "/opt/" + name + "/" + n, Version: v, Source: "test"}
		}
		return &toolchain.Toolchain{Name: name, Containerd: c("containerd"), Shim: c("shim"), Ctr: c("ctr"), Runc: c("runc")}
	}
	var one, two bytes.Buffer
	if err := toolchain.WriteTable(&one, []*toolchain.Toolchain{tc("system", "1.6.20")}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(one.String()), "\n")
	if len(lines) != 6 || lines[0] != "toolchain system" || !strings.HasPrefix(lines[1], "COMPONENT") || !strings.Contains(lines[2], "/opt/system/containerd") {
		t.Errorf("one toolchain:\n%s", one.String())
	}
	if err := toolchain.WriteTable(&two, []*toolchain.Toolchain{tc("system", "1.6.20"), tc("v2.2.1", "v2.2.1")}); err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(two.String()), "\n")
	if len(lines) != 9 || !strings.HasPrefix(lines[0], "TOOLCHAIN") || !strings.HasPrefix(lines[8], "v2.2.1") || !strings.Contains(lines[8], "runc") {
		t.Errorf("two toolchains:\n%s", two.String())
	}
}
