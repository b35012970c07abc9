package contract

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadPrivate(t *testing.T) {
	d := t.TempDir()
	p := filepath.Join(d, "u.json")
	if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadPrivate(p); err != nil || string(b) != "{}" {
		t.Fatalf("0600 file: %q, %v", b, err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPrivate(p); err == nil || !strings.Contains(err.Error(), "chmod 0600") {
		t.Errorf("0644 file: %v, want a refusal naming the fix", err)
	}
	if _, err := ReadPrivate(d); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a dir: %v", err)
	}
	if _, err := ReadPrivate(filepath.Join(d, "missing")); err == nil {
		t.Error("a missing file: no error")
	}
}
