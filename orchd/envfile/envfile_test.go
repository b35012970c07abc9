package envfile

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "env")
	mustWrite(t, p, "# comment\n\nA=1\nexport B=two words\nC=\"quoted\"\nD='single'\nE=a=b\n  F = spaced \n")
	got, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "two words", "C": "quoted", "D": "single", "E": "a=b", "F": "spaced"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	mustWrite(t, p, "A=1\nnot a pair\n")
	if _, err := Read(p); err == nil {
		t.Errorf("a line without = should be an error")
	}
	if _, err := Read(p + ".missing"); err == nil {
		t.Errorf("a missing env file should be an error")
	}
}

func TestReadAllLaterWins(t *testing.T) {
	d := t.TempDir()
	a, b := filepath.Join(d, "a"), filepath.Join(d, "b")
	mustWrite(t, a, "K=a\nONLY_A=1\n")
	mustWrite(t, b, "K=b\n")
	got, err := ReadAll([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"K": "b", "ONLY_A": "1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestErrorsDoNotEchoValues(t *testing.T) {
	p := filepath.Join(t.TempDir(), "e")
	mustWrite(t, p, "secret-value-without-equals\n")
	_, err := Read(p)
	if err == nil || strings.Contains(err.Error(), "secret-value") {
		t.Errorf("error %v must name the line, not its content", err)
	}
}

func mustWrite(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
