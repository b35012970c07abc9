package spec

// Stage 4, merge: lay each file's block over the service built so far.

import (
	"slices"
	"strconv"
	"strings"
)

var (
	hostOnly      = [...]int{slotUser, slotStop, slotReload}
	containerOnly = [...]int{slotEntrypoint, slotCmd}
)

// merge applies one file's block onto the merged service (creating it when the
// service is new): mode switch, then CLEAR, then this block's values.
func (p *parser) merge(b *block) {
	if b == nil || !b.valid {
		return
	}
	m, ok := p.services[b.name]
	if !ok {
		m = &msvc{name: b.name, at: b.at}
		p.services[b.name] = m
		p.order = append(p.order, m)
	}
	m.tainted = m.tainted || b.tainted
	_, bFrom := b.scalars.get(slotFrom)
	_, bRun := b.scalars.get(slotRun)
	_, mFrom := m.scalars.get(slotFrom)
	_, mRun := m.scalars.get(slotRun)
	if bFrom && !bRun && mRun {
		m.scalars[slotRun] = entry{}
		for _, k := range hostOnly {
			m.scalars[k] = entry{}
		}
	}
	if bRun && !bFrom && mFrom {
		m.scalars[slotFrom] = entry{}
		for _, k := range containerOnly {
			m.scalars[k] = entry{}
		}
		m.publish, m.volumes = nil, nil
	}
	for c := range b.clears {
		switch c {
		case "ENV":
			clear(m.env)
		case "PUBLISH":
			m.publish = nil
		case "VOLUME":
			m.volumes = nil
		default:
			m.lists[listSlot(c)] = nil
		}
	}
	for i, e := range b.scalars {
		if e.isSet() {
			m.scalars[i] = e
		}
	}
	if len(b.env) > 0 && m.env == nil {
		m.env = make(map[string]entry, len(b.env))
	}
	for k, e := range b.env {
		m.env[k] = e
	}
	if len(b.publish) > 0 {
		m.publish = mergePublish(m.publish, b.publish)
	}
	for _, e := range b.volumes {
		i := slices.IndexFunc(m.volumes, func(x volEntry) bool { return x.key == e.key })
		if i >= 0 {
			m.volumes[i] = e
		} else {
			m.volumes = append(m.volumes, e)
		}
	}
	for i, list := range b.lists {
		for _, e := range list {
			m.lists[i] = appendDedup(m.lists[i], e)
		}
	}
}

// mergePublish applies an overlay's PUBLISH entries: for each container port the
// overlay publishes, its entries replace all earlier ones for that port (at the
// place of the first); ports new to the service are appended.
func mergePublish(base, over []pubEntry) []pubEntry {
	ports := map[int]bool{}
	for _, e := range over {
		ports[e.p.Container] = true
	}
	out := make([]pubEntry, 0, len(base)+len(over))
	placed := map[int]bool{}
	for _, e := range base {
		port := e.p.Container
		if !ports[port] {
			out = append(out, e)
			continue
		}
		if !placed[port] {
			placed[port] = true
			for _, o := range over {
				if o.p.Container == port {
					out = append(out, o)
				}
			}
		}
	}
	for _, o := range over {
		if !placed[o.p.Container] {
			out = append(out, o)
		}
	}
	return out
}

func hostBinding(p Publish) string {
	switch {
	case p.HostIP == "":
		return strconv.Itoa(p.Host)
	case strings.Contains(p.HostIP, ":"):
		return "[" + p.HostIP + "]:" + strconv.Itoa(p.Host)
	}
	return p.HostIP + ":" + strconv.Itoa(p.Host)
}
