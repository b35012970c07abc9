package settings

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTimeScale(t *testing.T) {
	if got := (Settings{}).Scale(time.Minute); got != time.Minute {
		t.Errorf("unset scale: %v", got)
	}
	if got := (Settings{TimeScale: 3}).Scale(time.Minute); got != 3*time.Minute {
		t.Errorf("scale 3: %v", got)
	}
	for _, bad := range []string{"0.5", "x", "0", "1000"} {
		_, err := From(func(k string) string {
			if k == EnvTimeScale {
				return bad
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), EnvTimeScale) {
			t.Errorf("%s=%s: err %v, want a refusal naming the variable", EnvTimeScale, bad, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	in := Settings{Socket: "/run/c.sock", Root: "/r", State: "/s", Pid: 42, Log: "/l", DebugSocket: "/run/c.sock.debug",
		Orchd: "/bin/orchd", Images: "/img", Toolchain: "v2.2.1", Matrix: true, TimeScale: 2.5}
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
