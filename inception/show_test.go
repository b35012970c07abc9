package inception

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShowWritesTheReport(t *testing.T) {
	res := &Result{LabelFilter: "!slow", InnerClean: true}
	dir := filepath.Join(t.TempDir(), "reports")
	var js, table bytes.Buffer
	if err := Show(&js, res, true, dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "inception.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, js.Bytes()) {
		t.Errorf("inception.json differs from --json output:\n%s\n---\n%s", b, js.String())
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil || back.LabelFilter != "!slow" {
		t.Errorf("inception.json: %v, %+v", err, back)
	}
	if err := Show(&table, res, false, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), `label filter "!slow"`) || strings.HasPrefix(table.String(), "{") {
		t.Errorf("table:\n%s", table.String())
	}
}
