package badinput

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/runtime/containerd"
	"github.com/orchd/orchd/orchd/spec"
	"github.com/orchd/orchd/suites/framework"
)

var _ = Describe("a socket that is not a serving containerd", Label("containerd"), func() {
	DescribeTable("grow refuses it naming the socket and the fix, creating nothing",
		func(ctx SpecContext, setup func(s *sandbox) string) {
			s := newSandbox()
			sock := setup(s)
			s.write("Orchfile", []byte("SERVICE web\nFROM "+fw.Image("probe")+"\nCMD sleep forever\n"))
			start := time.Now()
			r := s.orchd(ctx, nil, s.env("ORCHD_CONTAINERD_SOCKET="+sock), s.globals("--runtime", "containerd", "grow")...)
			expectRefused(r, sock, "ORCHD_CONTAINERD_SOCKET")
			Expect(time.Since(start)).To(BeNumerically("<", 30*time.Second), "a dead socket must fail fast")
			s.expectNothingCreated(ctx)
		},
		Entry("a plain unix listener that never speaks gRPC", func(s *sandbox) string {
			p := filepath.Join(s.Root, "plain.sock")
			ln, err := net.Listen("unix", p)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(ln.Close)
			// Accept and hold connections open without a word, like a wedged daemon.
			go func() {
				defer GinkgoRecover()
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					DeferCleanup(c.Close)
				}
			}()
			return p
		}),
		Entry("a unix listener that answers HTTP/1 garbage", func(s *sandbox) string {
			p := filepath.Join(s.Root, "http.sock")
			ln, err := net.Listen("unix", p)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(ln.Close)
			go func() {
				defer GinkgoRecover()
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
					_ = c.Close()
				}
			}()
			return p
		}),
		Entry("a regular file", func(s *sandbox) string {
			p := filepath.Join(s.Root, "file.sock")
			Expect(os.WriteFile(p, []byte("not a socket"), 0o600)).To(Succeed())
			return p
		}),
		Entry("a path that does not exist", func(s *sandbox) string { return filepath.Join(s.Root, "absent.sock") }),
	)
})

// containerService is a probe service the leaf is asked to run directly.
func containerService(image string) spec.Service {
	return spec.Service{Name: "web", Mode: spec.ModeContainer, Image: image, Cmd: "sleep forever",
		Timeouts: spec.Timeouts{Stop: spec.Duration("2s")}}
}

var _ = Describe("a service the containerd runtime cannot run", Label("containerd"), func() {
	DescribeTable("the leaf exits non-zero naming the input; grow reports it; nothing leaks",
		func(ctx SpecContext, mutate func(s *sandbox, svc *spec.Service) (orchfileLines string, wants []string)) {
			s := newSandbox()
			svc := containerService(fw.Image("probe"))
			lines, wants := mutate(s, &svc)

			By("orchd containerd-run, directly")
			rs := containerd.RunSpec{
				Version: containerd.RunSpecVersion, Namespace: s.Namespace, ContainerID: containerd.ContainerID(s.Namespace, svc.Name),
				Socket: fw.Daemon.Address, Service: svc, ProjectDir: s.Project, DataDir: filepath.Join(s.State, "data"),
				StateDir: s.State, Label: contract.Label(s.Namespace, svc.Name), EnvFiles: svc.EnvFiles,
			}
			b, err := rs.Encode()
			Expect(err).NotTo(HaveOccurred())
			specFile := filepath.Join(s.Root, "web.crun.json")
			Expect(os.WriteFile(specFile, b, 0o600)).To(Succeed())
			lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			r := s.orchd(lctx, nil, nil, "containerd-run", "--spec-file", specFile)
			expectRefused(r, wants...)
			// The imported image may stay cached until fell sweeps it; no container or task may.
			expectNoContainers(ctx, s.Namespace)

			By("orchd grow: the service ends exited or failed and its log names the input")
			s.write("Orchfile", []byte("SERVICE web\n"+lines+"CMD sleep forever\nTIMEOUT_STOP 2s\n"))
			g := s.orchd(ctx, nil, nil, s.globals("--runtime", "containerd", "grow")...)
			if g.Code != 0 {
				// Refusing at grow time is as good, if it names the input.
				expectRefused(g, wants...)
			} else {
				s.EventuallyRow(ctx, "web", func(g Gomega, row framework.Row) {
					g.Expect(row.State).To(BeElementOf(contract.StateExited, contract.StateFailed), "web: %s", row.Message)
				})
				logs := s.Logs(ctx, "web")
				for _, w := range wants {
					Expect(logs).To(ContainSubstring(w), "the service log must name %q", w)
				}
			}
			s.Fell(ctx)
			s.ExpectNoLeaks(ctx)
			s.expectNothingRunning()
		},
		Entry("an OCI layout that does not exist", func(s *sandbox, svc *spec.Service) (string, []string) {
			p := filepath.Join(s.Root, "no-such-layout")
			svc.Image = "oci-layout://" + p
			return "FROM " + svc.Image + "\n", []string{p}
		}),
		Entry("a registry ref nobody serves (loopback, closed port)", func(s *sandbox, svc *spec.Service) (string, []string) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			Expect(err).NotTo(HaveOccurred())
			addr := ln.Addr().String()
			Expect(ln.Close()).To(Succeed())
			svc.Image = addr + "/nope:latest"
			return "FROM " + svc.Image + "\n", []string{svc.Image}
		}),
		Entry("a VOLUME source that does not exist", func(s *sandbox, svc *spec.Service) (string, []string) {
			src := filepath.Join(s.Root, "no-such-dir")
			svc.Volumes = []spec.Volume{{Source: src, Destination: "/data"}}
			return "FROM " + svc.Image + "\nVOLUME " + src + ":/data\n", []string{src}
		}),
		Entry("an ENV_FILE that is a symlink loop", func(s *sandbox, svc *spec.Service) (string, []string) {
			a, b := filepath.Join(s.Project, "a.env"), filepath.Join(s.Project, "b.env")
			Expect(os.Symlink(b, a)).To(Succeed())
			Expect(os.Symlink(a, b)).To(Succeed())
			svc.EnvFiles = []string{a}
			return "FROM " + svc.Image + "\nENV_FILE " + a + "\n", []string{a}
		}),
	)

	It("a host service whose ENV_FILE is a symlink loop: grow or the service names the file", func(ctx SpecContext) {
		s := newSandbox()
		a, b := filepath.Join(s.Project, "a.env"), filepath.Join(s.Project, "b.env")
		Expect(os.Symlink(b, a)).To(Succeed())
		Expect(os.Symlink(a, b)).To(Succeed())
		s.write("Orchfile", []byte("SERVICE host\nRUN exec sleep 600\nENV_FILE "+a+"\nTIMEOUT_STOP 2s\n"))
		g := s.orchd(ctx, nil, nil, s.globals("--runtime", "bare", "grow")...)
		if g.Code != 0 {
			expectRefused(g, a)
		} else {
			row := s.EventuallyRow(ctx, "host", func(g Gomega, row framework.Row) {
				g.Expect(row.State).To(BeElementOf(contract.StateExited, contract.StateFailed), "host: %s", row.Message)
			})
			all := row.Message + s.Logs(ctx, "host") + readAll(s.Layout.SuperviseLog(s.Label("host")))
			Expect(all).To(ContainSubstring(a), "the failure must name the env file")
		}
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
		s.expectNothingRunning()
	})
})

func readAll(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// expectNothingRunning asserts no process names the sandbox any more.
func (s *sandbox) expectNothingRunning() {
	GinkgoHelper()
	Eventually(func() []string { return processesMentioning(s.Root) }).WithTimeout(30 * time.Second).Should(BeEmpty())
}

// expectNoContainers asserts containerd holds no container and no task in ns.
func expectNoContainers(ctx context.Context, ns string) {
	GinkgoHelper()
	c, err := client.New(fw.Daemon.Address)
	Expect(err).NotTo(HaveOccurred())
	defer c.Close()
	nctx := namespaces.WithNamespace(ctx, ns)
	ctrs, err := c.Containers(nctx)
	Expect(err).NotTo(HaveOccurred())
	Expect(ctrs).To(BeEmpty(), "containers left in %s", ns)
	ts, err := c.TaskService().List(nctx, nil)
	Expect(err).NotTo(HaveOccurred())
	Expect(ts.Tasks).To(BeEmpty(), "tasks left in %s", ns)
}
