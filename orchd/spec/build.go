package spec

// Stage 5, build: check the merged services and produce the Spec.

import (
	"cmp"
	"strconv"
)

// build checks the constraints on the merged services and produces the Spec.
func (p *parser) build() *Spec {
	s := &Spec{Version: Version, Services: make([]Service, 0, len(p.order))}
	if len(p.argVals) > 0 {
		s.Args = p.argVals
	}
	index := make(map[string]int, len(p.order))
	for i, m := range p.order {
		index[m.name] = i
	}
	adj := make([][]depEdge, len(p.order))
	for i, m := range p.order {
		p.checkMode(m)
		p.checkArgTotal(m)
		for _, kw := range [...]string{"REQUIRES", "AFTER"} {
			for _, e := range m.lists[listSlot(kw)] {
				j, ok := index[e.val]
				if !ok {
					if kw == "REQUIRES" {
						hint := "define SERVICE " + e.val + ", or use AFTER for an optional ordering"
						if near := p.nearestService(e.val); near != "" {
							hint = "did you mean " + near + "? Otherwise " + hint
						}
						p.errorf(e.at, hint, "service %s REQUIRES undefined service %s", m.name, e.val)
					}
					continue
				}
				adj[i] = append(adj[i], depEdge{to: j, at: e.at})
			}
		}
		s.Services = append(s.Services, m.service())
	}
	for _, c := range findCycles(adj) {
		p.errorf(c.edge.at, "REQUIRES and AFTER must not form a cycle", "dependency cycle: %s", cycleString(c.cycle, func(i int) string { return p.order[i].name }))
	}
	return s
}

// nearestService returns a defined service whose name is a likely typo of name.
func (p *parser) nearestService(name string) string {
	best, bestD := "", 3
	for _, m := range p.order {
		if d := editDistance(name, m.name); d < bestD {
			best, bestD = m.name, d
		}
	}
	if bestD*3 > len(name) { // too short for the edit to look like a typo
		return ""
	}
	return best
}

// checkMode enforces C1 (exactly one of FROM/RUN), C2 and C3.
func (p *parser) checkMode(m *msvc) {
	from, hasFrom := m.scalars.get(slotFrom)
	run, hasRun := m.scalars.get(slotRun)
	switch {
	case hasFrom && hasRun:
		later := run.at
		if run.at.before(from.at) {
			later = from.at
		}
		p.errorf(later, "a service is either a container (FROM image) or a host process (RUN command); keep one",
			"service %s has both FROM (at %s) and RUN (at %s)", m.name, p.where(from.at), p.where(run.at))
	case !hasFrom && !hasRun:
		if m.tainted {
			return
		}
		p.errorf(m.at, "add FROM image (container) or RUN command (host process)", "service %s has neither FROM nor RUN", m.name)
	case hasRun:
		for _, k := range containerOnly {
			if e, ok := m.scalars.get(k); ok {
				p.errorf(e.at, "remove "+scalarNames[k]+", or replace RUN with FROM image", "%s is only valid with FROM: service %s is a host service (RUN at %s)", scalarNames[k], m.name, p.where(run.at))
			}
		}
		for _, e := range m.publish {
			p.errorf(e.at, "remove PUBLISH (a host process binds its own ports), or replace RUN with FROM image", "PUBLISH is only valid with FROM: service %s is a host service (RUN at %s)", m.name, p.where(run.at))
		}
		for _, e := range m.volumes {
			p.errorf(e.at, "remove VOLUME, or replace RUN with FROM image", "VOLUME is only valid with FROM: service %s is a host service (RUN at %s)", m.name, p.where(run.at))
		}
	case hasFrom:
		for _, k := range hostOnly {
			if e, ok := m.scalars.get(k); ok {
				p.errorf(e.at, "remove "+scalarNames[k]+", or replace FROM with RUN command", "%s is only valid with RUN: service %s is a container service (FROM at %s)", scalarNames[k], m.name, p.where(from.at))
			}
		}
	}
}

// service converts a merged service to its JSON form, filling the defaults that
// readers need to see (restart, timeouts, recreate).
func (m *msvc) service() Service {
	sc := func(slot int) string { return m.scalars[slot].val }
	svc := Service{
		Name:             m.name,
		Image:            sc(slotFrom),
		RunCommand:       sc(slotRun),
		Entrypoint:       sc(slotEntrypoint),
		Cmd:              sc(slotCmd),
		User:             sc(slotUser),
		StopCommand:      sc(slotStop),
		ReloadCommand:    sc(slotReload),
		Workdir:          sc(slotWorkdir),
		Healthcheck:      sc(slotHealthcheck),
		ReadinessTimeout: Duration(sc(slotReadinessTimeout)),
		Oneshot:          sc(slotOneshot) == "true",
		Disabled:         sc(slotDisabled) == "true",
		Recreate:         cmp.Or(sc(slotRecreate), "never"),
		Restart: Restart{
			Policy:             RestartNo,
			Delay:              cmp.Or(Duration(sc(slotRestartDelay)), DefaultRestartDelay),
			StartLimitBurst:    DefaultStartLimitBurst,
			StartLimitInterval: cmp.Or(Duration(sc(slotStartLimitInterval)), DefaultStartLimitInterval),
		},
		Timeouts: Timeouts{
			Start: cmp.Or(Duration(sc(slotTimeoutStart)), DefaultTimeoutStart),
			Stop:  cmp.Or(Duration(sc(slotTimeoutStop)), DefaultTimeoutStop),
		},
		Resources: Resources{Memory: sc(slotMemory), CPUQuota: sc(slotCpuQuota)},
		Logging:   Logging{Stdout: sc(slotStdout), Stderr: sc(slotStderr)},
	}
	if svc.Image != "" {
		svc.Mode = ModeContainer
	} else {
		svc.Mode = ModeHost
	}
	switch sc(slotRestart) {
	case "always":
		svc.Restart.Policy = RestartAlways
	case "on-failure":
		svc.Restart.Policy = RestartOnFailure
	}
	if n := atoi(sc(slotStartLimitBurst)); n > 0 {
		svc.Restart.StartLimitBurst = int(n)
	}
	if e, ok := m.scalars.get(slotCpus); ok {
		if f, err := strconv.ParseFloat(e.val, 64); err == nil {
			svc.Resources.CPUs = &f
		}
	}
	svc.Resources.LimitNofile = atoi(sc(slotLimitNofile))
	svc.Resources.LimitNproc = atoi(sc(slotLimitNproc))
	svc.Resources.TasksMax = atoi(sc(slotTasksMax))
	svc.Resources.IOWeight = int(atoi(sc(slotIoWeight)))
	if len(m.env) > 0 {
		svc.Env = make(map[string]string, len(m.env))
		for k, e := range m.env {
			svc.Env[k] = e.val
		}
	}
	for _, e := range m.publish {
		svc.Publish = append(svc.Publish, e.p)
	}
	for _, e := range m.volumes {
		svc.Volumes = append(svc.Volumes, e.v)
	}
	svc.EnvFiles = values(m.lists[listEnvFile])
	svc.Requires = values(m.lists[listRequires])
	svc.After = values(m.lists[listAfter])
	return svc
}

// atoi converts an already validated integer; unset or invalid (a parse that
// will fail anyway) gives 0.
func atoi(s string) int64 {
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func values(list []entry) []string {
	if len(list) == 0 {
		return nil
	}
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.val
	}
	return out
}
