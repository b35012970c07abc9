package toolchain

import (
	"context"
	"strings"
	"testing"
)

func TestStagedNeverBuildsAndNamesTheStageCommand(t *testing.T) {
	t.Setenv(EnvDir, "")
	_, err := Staged(context.Background(), Options{Dir: t.TempDir(), Containerd: "v2.9.9"})
	if err == nil {
		t.Fatal("an unstaged v2.9.9 resolved")
	}
	if want := "go run ./cmd/orchd-harness stage --containerd v2.9.9"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name %q", err, want)
	}
	if _, err := Staged(context.Background(), Options{Containerd: "1.7"}); err == nil {
		t.Fatal("a bad toolchain name resolved")
	}
}
