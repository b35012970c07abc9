package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// line is one series of a chart: y against x, drawn solid or dashed.
type line struct {
	label  string
	color  string
	dashed bool
	xs, ys []float64
	lo, hi []float64 // min and max per point (whiskers); nil for none
}

type chart struct {
	title, xLabel, yLabel string
	lines                 []line
}

const (
	chartW, chartH = 460, 320
	padL, padR     = 60, 20
	padT, padB     = 40, 110
)

// WriteSVG draws the scale curve: time against N (fan-out and teardown, orchd
// and the floor) and memory against N (orchd's processes and containerd).
func WriteSVG(w io.Writer, r *ScaleResult) {
	var ns, ou, fu, od, fd, oul, ouh, ful, fuh, odl, odh, fdl, fdh, pss, dmo, dmf []float64
	for _, p := range r.Points {
		ns = append(ns, float64(p.N))
		ou, oul, ouh = append(ou, p.OrchdUp.Median), append(oul, p.OrchdUp.Min), append(ouh, p.OrchdUp.Max)
		fu, ful, fuh = append(fu, p.FloorUp.Median), append(ful, p.FloorUp.Min), append(fuh, p.FloorUp.Max)
		od, odl, odh = append(od, p.OrchdDown.Median), append(odl, p.OrchdDown.Min), append(odh, p.OrchdDown.Max)
		fd, fdl, fdh = append(fd, p.FloorDown.Median), append(fdl, p.FloorDown.Min), append(fdh, p.FloorDown.Max)
		pss, dmo, dmf = append(pss, p.OrchdPSS.Median), append(dmo, p.DaemonOrchd.Median), append(dmf, p.DaemonFloor.Median)
	}
	charts := []chart{
		{title: "time to all RUNNING and to torn down", xLabel: "N services", yLabel: "seconds", lines: []line{
			{label: "orchd grow", color: "#1f77b4", xs: ns, ys: ou, lo: oul, hi: ouh},
			{label: "floor start", color: "#1f77b4", dashed: true, xs: ns, ys: fu, lo: ful, hi: fuh},
			{label: "orchd fell", color: "#d62728", xs: ns, ys: od, lo: odl, hi: odh},
			{label: "floor teardown", color: "#d62728", dashed: true, xs: ns, ys: fd, lo: fdl, hi: fdh},
		}},
		{title: "memory with N running", xLabel: "N services", yLabel: "MB", lines: []line{
			{label: "orchd processes, PSS", color: "#2ca02c", xs: ns, ys: pss},
			{label: "containerd RSS (orchd)", color: "#9467bd", xs: ns, ys: dmo},
			{label: "containerd RSS (floor)", color: "#9467bd", dashed: true, xs: ns, ys: dmf},
		}},
	}
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n",
		chartW*len(charts), chartH)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for i, c := range charts {
		fmt.Fprintf(w, `<g transform="translate(%d,0)">`+"\n", i*chartW)
		c.draw(w)
		fmt.Fprintln(w, "</g>")
	}
	fmt.Fprintln(w, "</svg>")
}

func (c chart) draw(w io.Writer) {
	xmax, ymax := 1.0, 0.0
	for _, l := range c.lines {
		for i := range l.xs {
			xmax = math.Max(xmax, l.xs[i])
			ymax = math.Max(ymax, l.ys[i])
			if l.hi != nil {
				ymax = math.Max(ymax, l.hi[i])
			}
		}
	}
	ystep := niceStep(ymax)
	ymax = math.Max(ystep, math.Ceil(ymax/ystep)*ystep)
	xstep := niceStep(xmax)
	xmax = math.Ceil(xmax/xstep) * xstep
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	px := func(x float64) float64 { return padL + x/xmax*pw }
	py := func(y float64) float64 { return padT + ph - y/ymax*ph }

	fmt.Fprintf(w, `<text x="%d" y="20" font-weight="bold">%s</text>`+"\n", padL, esc(c.title))
	for y := 0.0; y <= ymax+ystep/2; y += ystep {
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", padL, py(y), chartW-padR, py(y))
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padL-5, py(y)+4, trimNum(y))
	}
	for x := 0.0; x <= xmax+xstep/2; x += xstep {
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#888"/>`+"\n", px(x), padT+int(ph), px(x), float64(padT)+ph+4)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", px(x), float64(padT)+ph+16, trimNum(x))
	}
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%.1f" stroke="#333"/>`+"\n", padL, padT, padL, float64(padT)+ph)
	fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#333"/>`+"\n", padL, float64(padT)+ph, chartW-padR, float64(padT)+ph)
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", padL+pw/2, float64(padT)+ph+32, esc(c.xLabel))
	fmt.Fprintf(w, `<text transform="translate(14,%.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", padT+ph/2, esc(c.yLabel))

	for li, l := range c.lines {
		dash := ""
		if l.dashed {
			dash = ` stroke-dasharray="6,4"`
		}
		var pts []string
		for i := range l.xs {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(l.xs[i]), py(l.ys[i])))
		}
		fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", l.color, dash, strings.Join(pts, " "))
		for i := range l.xs {
			fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", px(l.xs[i]), py(l.ys[i]), l.color)
			if l.lo != nil {
				fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", px(l.xs[i]), py(l.lo[i]), px(l.xs[i]), py(l.hi[i]), l.color)
			}
		}
		ly := float64(padT) + ph + 50 + float64(li)*15
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", padL, ly-4, padL+30, ly-4, l.color, dash)
		fmt.Fprintf(w, `<text x="%d" y="%.1f">%s</text>`+"\n", padL+36, ly, esc(l.label))
	}
}

// niceStep picks a 1, 2 or 5 x 10^k tick step giving about 5 ticks up to max.
func niceStep(max float64) float64 {
	if max <= 0 {
		return 1
	}
	raw := max / 5
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func trimNum(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
