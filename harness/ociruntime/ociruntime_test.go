package ociruntime

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestLookupUnknown(t *testing.T) {
	_, err := Lookup("kata")
	if !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "runsc") {
		t.Fatalf("want ErrUnknown naming the known runtimes, got %v", err)
	}
}

func TestLookupMissingNamesPackage(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Lookup("runsc")
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y runsc") {
		t.Fatalf("want the install command, got %v", err)
	}
}

// fakeRuntime puts an executable named name on a fresh PATH that prints its arguments.
func fakeRuntime(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	return p
}

func TestBinaryWrapsFlagsAheadOfTheShimsArguments(t *testing.T) {
	bin := fakeRuntime(t, "runsc")
	r, err := Lookup("runsc")
	if err != nil || r.Path != bin {
		t.Fatalf("Lookup: %+v %v", r, err)
	}
	dir := t.TempDir()
	w, err := r.Binary(dir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(w) != "runsc" || filepath.Dir(w) != dir {
		t.Fatalf("wrapper %s: want %s/runsc (its name names the runtime)", w, dir)
	}
	out, err := exec.Command(w, "--root", "/run/x", "create", "it's").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(out)), "--network=host --root /run/x create it's"; got != want {
		t.Fatalf("wrapper ran %q, want %q", got, want)
	}
	// A wrapper given back by path is taken as is: never wrapped twice.
	again, err := Lookup(w)
	if err != nil || again.Name != "runsc" || again.Wrapped() {
		t.Fatalf("Lookup(%s) = %+v, %v", w, again, err)
	}
	if p, _ := again.Binary(t.TempDir()); p != w {
		t.Fatalf("Binary of a path: %s, want %s", p, w)
	}
}

func TestBinaryWithoutFlagsIsTheRuntime(t *testing.T) {
	bin := fakeRuntime(t, "runc")
	r, err := Lookup("")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := r.Binary(t.TempDir()); err != nil || p != bin {
		t.Fatalf("Binary = %s, %v; want %s", p, err, bin)
	}
}
