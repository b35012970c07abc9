package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/orchd/orchd/orchd/platform/systemd"
)

// load binds fresh flags, parses argv and resolves with the given env map.
func load(t *testing.T, argv []string, env map[string]string) (*Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	f := Bind(fs)
	if err := fs.Parse(argv); err != nil {
		t.Fatal(err)
	}
	return f.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

func TestPrecedence(t *testing.T) {
	home, project := t.TempDir(), t.TempDir()
	write(t, filepath.Join(home, ".orchrc"), "namespace = fromhome\nruntime = containerd\nstate-dir = /home-state\n")
	write(t, filepath.Join(project, ".orchrc"), "# project settings\nnamespace = fromproject\n\noverlay = dev.orch\narg = a=rc\n")
	base := map[string]string{"HOME": home}

	tests := []struct {
		name string
		argv []string
		env  map[string]string
		want func(*Config) (string, string)
	}{
		{"project rc beats home rc", nil, nil, func(c *Config) (string, string) { return c.Namespace, "fromproject" }},
		{"home rc beats default", nil, nil, func(c *Config) (string, string) { return c.Runtime, "containerd" }},
		{"env beats rc", nil, map[string]string{"ORCH_NAMESPACE": "fromenv"}, func(c *Config) (string, string) { return c.Namespace, "fromenv" }},
		{"flag beats env", []string{"--namespace", "fromflag"}, map[string]string{"ORCH_NAMESPACE": "fromenv"}, func(c *Config) (string, string) { return c.Namespace, "fromflag" }},
		{"default platform", nil, nil, func(c *Config) (string, string) { return c.Platform, DefaultPlatform(c.Scope) }},
		{"data dir follows state dir", []string{"--state-dir", "/s"}, nil, func(c *Config) (string, string) { return c.DataDir, "/s/data/fromproject" }},
		{"rc state dir", nil, nil, func(c *Config) (string, string) { return c.StateDir, "/home-state" }},
		{"orchfile default", nil, nil, func(c *Config) (string, string) { return c.Orchfile, filepath.Join(project, "Orchfile") }},
		{"rc overlay relative to project", nil, nil, func(c *Config) (string, string) {
			return strings.Join(c.Overlays, ","), filepath.Join(project, "dev.orch")
		}},
		{"flag arg beats rc arg", []string{"--arg", "a=flag"}, nil, func(c *Config) (string, string) { return c.Args["a"], "flag" }},
		{"scope flag", []string{"--system"}, nil, func(c *Config) (string, string) { return c.Scope, "system" }},
		{"scope env", nil, map[string]string{"ORCH_SCOPE": "system"}, func(c *Config) (string, string) { return c.Scope, "system" }},
		{"address default", nil, nil, func(c *Config) (string, string) { return c.Address, "" }},
		{"address from CONTAINERD_ADDRESS", nil, map[string]string{"CONTAINERD_ADDRESS": "/c.sock"}, func(c *Config) (string, string) { return c.Address, "/c.sock" }},
		{"ORCHD_CONTAINERD_SOCKET beats CONTAINERD_ADDRESS", nil, map[string]string{"CONTAINERD_ADDRESS": "/c.sock", "ORCHD_CONTAINERD_SOCKET": "/o.sock"}, func(c *Config) (string, string) { return c.Address, "/o.sock" }},
		{"address flag beats env", []string{"--address", "/f.sock"}, map[string]string{"CONTAINERD_ADDRESS": "/c.sock"}, func(c *Config) (string, string) { return c.Address, "/f.sock" }},
		{"scope default", nil, nil, func(c *Config) (string, string) { return c.Scope, "user" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"ORCH_PROJECT": project}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			c, err := load(t, tt.argv, env)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := tt.want(c); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	home, project := t.TempDir(), t.TempDir()
	env := map[string]string{"HOME": home, "ORCH_PROJECT": project}
	tests := []struct {
		name, rc string
		argv     []string
		env      map[string]string
		want     string
	}{
		{"bad rc line", "namespace fromproject\n", nil, nil, ".orchrc:1: want \"key = value\""},
		{"unknown rc key names the file, line and nearest key", "# c\nnamespce = x\n", nil, nil, ".orchrc:2: unknown setting \"namespce\" (did you mean \"namespace\"?)"},
		{"empty rc value", "runtime =\n", nil, nil, ".orchrc:1: runtime has no value"},
		{"bad namespace", "", []string{"--namespace", "Bad_NS"}, nil, "must be a DNS label"},
		{"namespace with traversal", "", []string{"--namespace", "../x"}, nil, "must be a DNS label"},
		{"bad runtime from env", "", nil, map[string]string{"ORCH_RUNTIME": "docker"}, "runtime \"docker\" (from env ORCH_RUNTIME)"},
		{"bad platform", "", []string{"--platform", "upstart"}, nil, "platform \"upstart\""},
		{"user and system", "", []string{"--user", "--system"}, nil, "mutually exclusive"},
		{"bad arg", "", []string{"--arg", "novalue"}, nil, "want name=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			write(t, filepath.Join(project, ".orchrc"), tt.rc)
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			for k, v := range tt.env {
				e[k] = v
			}
			_, err := load(t, tt.argv, e)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestNearest(t *testing.T) {
	if got := nearest("runtim", rcKeys); got != "runtime" {
		t.Errorf("nearest = %q", got)
	}
	if got := nearest("zzzzzzzz", rcKeys); got != "" {
		t.Errorf("nearest = %q, want none", got)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestProjectNamespace(t *testing.T) {
	for dir, want := range map[string]string{
		"/src/my-app":                            "my-app",
		"/src/My_App.v2":                         "my-app-v2",
		"/src/web site":                          "web-site",
		"/src/__x__":                             "x",
		"/src/ÉtéÇ":                              "t",
		"/src/!!!":                               DefaultNamespace,
		"/":                                      DefaultNamespace,
		"/src/" + strings.Repeat("a", 62) + "-b": strings.Repeat("a", 62),
	} {
		if got := ProjectNamespace(dir); got != want {
			t.Errorf("ProjectNamespace(%q) = %q, want %q", dir, got, want)
		}
	}
}

func TestDefaultNamespaceFollowsProject(t *testing.T) {
	base := filepath.Join(t.TempDir(), "Shop_Front")
	if err := os.Mkdir(base, 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := load(t, nil, map[string]string{"ORCH_PROJECT": base, "HOME": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if c.Namespace != "shop-front" || !strings.HasSuffix(c.DataDir, "/data/shop-front") {
		t.Fatalf("namespace %q data %q, want shop-front and <state>/data/shop-front", c.Namespace, c.DataDir)
	}
}

func TestDetectPlatform(t *testing.T) {
	ok := func(context.Context, string) error { return nil }
	silent := func(context.Context, string) error { return errors.New("no bus") }
	for _, tt := range []struct {
		name string
		goos string
		host systemd.Host
		want string
	}{
		{"macOS", "darwin", systemd.Host{}, "launchd"},
		{"systemd PID 1 answering", "linux", systemd.Host{PID1: "systemd", Answers: ok}, "systemd"},
		{"systemd PID 1, bus silent", "linux", systemd.Host{PID1: "systemd", Answers: silent}, "orchdi"},
		{"other PID 1", "linux", systemd.Host{PID1: "tini", Answers: ok}, "orchdi"},
		{"other OS", "freebsd", systemd.Host{PID1: "systemd", Answers: ok}, "orchdi"},
	} {
		if got := detectPlatform(context.Background(), tt.goos, tt.host, "user"); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestPlatformDefaultUsesDetector(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	var asked string
	f := Bind(fs).WithDetector(func(scope string) string { asked = scope; return "systemd" })
	if err := fs.Parse([]string{"--system"}); err != nil {
		t.Fatal(err)
	}
	c, err := f.Load(func(k string) (string, bool) {
		if k == "HOME" || k == "ORCH_PROJECT" {
			return t.TempDir(), true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Platform != "systemd" || c.Sources["platform"] != "default" || asked != "system" {
		t.Errorf("platform %q from %q, probed scope %q; want systemd from default, probed for system", c.Platform, c.Sources["platform"], asked)
	}
	fs = pflag.NewFlagSet("t", pflag.ContinueOnError)
	f = Bind(fs).WithDetector(func(string) string { t.Error("detector called although --platform was given"); return "" })
	fs.Parse([]string{"--platform", "orchdi"})
	if c, err := f.Load(func(k string) (string, bool) { return t.TempDir(), k == "HOME" || k == "ORCH_PROJECT" }); err != nil || c.Platform != "orchdi" {
		t.Errorf("flag platform: %v %v", c, err)
	}
}

// TestDefaultPlatformOnThisHost: where PID 1 is not systemd the default is
// orchdi, so a bare `orchd grow` works on such a host.
func TestDefaultPlatformOnThisHost(t *testing.T) {
	h := systemd.ThisHost()
	want := "orchdi"
	if h.PID1 == "systemd" && systemd.Available(context.Background(), h, "user") == nil {
		want = "systemd"
	}
	if got := DefaultPlatform("user"); got != want {
		t.Errorf("PID 1 is %q: default platform %s, want %s", h.PID1, got, want)
	}
}
