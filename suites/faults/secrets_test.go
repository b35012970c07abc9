package faults

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/suites/framework"
)

func secret() string {
	b := make([]byte, 12)
	_, err := rand.Read(b)
	Expect(err).NotTo(HaveOccurred())
	return "s3cr3t-" + hex.EncodeToString(b)
}

var _ = Describe("secrets and state files while services run", Label("hardening"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	It("keeps ENV and ENV_FILE values off every command line and out of every log; state files are 0600, dirs 0700", func(ctx SpecContext) {
		inline, fromFile := secret(), secret()
		s.WriteFile("secrets.env", "FROM_FILE="+fromFile+"\n")
		s.WriteOrchfile(fmt.Sprintf(`SERVICE ctr
FROM %s
CMD sleep forever
ENV TOKEN=%[2]s
ENV_FILE secrets.env
TIMEOUT_STOP 2s

SERVICE host
RUN exec sleep %[3]s
ENV TOKEN=%[2]s
ENV_FILE ${ORCH_PROJECT}/secrets.env
TIMEOUT_STOP 2s
`, s.Image("probe"), inline, marker()))
		s.Grow(ctx)
		s.EventuallyState(ctx, "ctr", contract.StateRunning)
		s.EventuallyRow(ctx, "host", func(g Gomega, r framework.Row) { g.Expect(r.State).To(Equal(contract.StateRunning)) })

		By("no command line on the host holds a secret")
		for _, sec := range []string{inline, fromFile} {
			Expect(procs(func(p proc) bool { return strings.Contains(strings.Join(p.Argv, " "), sec) })).
				To(BeEmpty(), "a secret is visible in /proc/*/cmdline")
		}

		By("no log holds a secret; every state file is 0600 or stricter, every dir 0700")
		var holders []string
		Expect(filepath.WalkDir(s.StateDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			switch {
			case d.IsDir():
				Expect(info.Mode().Perm()&0o077).To(BeZero(), "dir %s is %v: want 0700", p, info.Mode().Perm())
				return nil
			case info.Mode()&fs.ModeNamedPipe != 0, info.Mode()&fs.ModeSocket != 0:
				Expect(info.Mode().Perm()&0o077).To(BeZero(), "%s is %v: want 0600", p, info.Mode().Perm())
				return nil
			}
			Expect(info.Mode().Perm()&0o077).To(BeZero(), "state file %s is %v: want 0600", p, info.Mode().Perm())
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, sec := range []string{inline, fromFile} {
				if strings.Contains(string(b), sec) {
					holders = append(holders, p)
				}
			}
			return nil
		})).To(Succeed())
		for _, h := range holders {
			Expect(h).NotTo(HavePrefix(s.Layout.LogDir()), "a log holds a secret")
			Expect(h).To(HavePrefix(s.Layout.RunDir()), "only the 0600 run specs may hold secrets")
		}
		daemonLog, err := os.ReadFile(victim.LogPath())
		Expect(err).NotTo(HaveOccurred())
		for _, sec := range []string{inline, fromFile} {
			Expect(string(daemonLog)).NotTo(ContainSubstring(sec), "the containerd log holds a secret")
		}

		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(4*time.Minute))
})
