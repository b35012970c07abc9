package contract

import "testing"

// The tree documented on Layout is the tree its methods name.
func TestLayoutPaths(t *testing.T) {
	l := Layout{StateDir: "/s"}
	for got, want := range map[string]string{
		l.UnitFile("ns.web"):          "/s/run/ns.web.unit.json",
		l.CrunFile("ns.web"):          "/s/run/ns.web.crun.json",
		l.VMSpecFile("ns.web"):        "/s/run/ns.web.vm.json",
		l.VMWorkDir("ns.web"):         "/s/run/ns.web.vm.d",
		l.ImageLock("ns"):             "/s/run/.ns.image.lock",
		l.FIFODir("ns.web"):           "/s/fifo/ns.web",
		l.StatusFile("ns.web"):        "/s/status/ns.web.json",
		l.LogFile("ns.web"):           "/s/logs/ns.web.log",
		NamedVolume("/d", "ns", "db"): "/d/volumes/ns/db",
		l.NotifySocket("ns.web"):      "/s/notify/ns.web.sock",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}
