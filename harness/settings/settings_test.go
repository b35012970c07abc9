package settings

import (
	"slices"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	in := Settings{Socket: "/run/c.sock", Root: "/r", State: "/s", Pid: 42, Log: "/l", DebugSocket: "/run/c.sock.debug",
		Orchd: "/bin/orchd", Images: "/img", Toolchain: "v2.2.1", Matrix: true}
	env := map[string]string{}
	for _, kv := range in.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	out, err := From(func(k string) string { return env[k] })
	if err != nil || out != in {
		t.Fatalf("From(Environ()) = %+v, %v; want %+v", out, err, in)
	}
	if env[EnvSocket] != "/run/c.sock" || env["ORCHD_CONTAINERD_SOCKET"] != "/run/c.sock" {
		t.Errorf("socket not written as ORCHD_CONTAINERD_SOCKET: %v", env)
	}
	if got := (Settings{Orchd: "/o"}).Environ(); !slices.Equal(got, []string{EnvOrchd + "=/o"}) {
		t.Errorf("unset values written: %q", got)
	}
	if _, err := From(func(k string) string {
		if k == EnvPid {
			return "x"
		}
		return ""
	}); err == nil {
		t.Error("a bad pid was accepted")
	}
}
