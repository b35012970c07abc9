// Package stress holds the stress cycle definitions: Orchfile templates that
// `orchd-harness stress --template NAME` grows and fells repeatedly. Each
// template declares exactly .Services long-running services from .Image, so
// a cycle is "all running, then zero leaks after fell".
package stress

import (
	"bytes"
	"embed"
	"fmt"
	"sort"
	"strings"
	"text/template"
)

//go:embed *.orch.tmpl
var files embed.FS

// Data is what a template is rendered with.
type Data struct {
	Image    string // FROM value of the probe image
	Services int
	Name     string // unique per run, for named volumes and the like
}

// Seq returns 0..n-1 for range loops.
func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// Names lists the templates.
func Names() []string {
	ents, _ := files.ReadDir(".")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".orch.tmpl"))
	}
	sort.Strings(out)
	return out
}

// Render renders the named template.
func Render(name string, d Data) (string, error) {
	raw, err := files.ReadFile(name + ".orch.tmpl")
	if err != nil {
		return "", fmt.Errorf("stress template %q (have %s): %w", name, strings.Join(Names(), ", "), err)
	}
	t, err := template.New(name).Funcs(template.FuncMap{"seq": seq, "mod": func(a, b int) int { return a % b }}).Option("missingkey=error").Parse(string(raw))
	if err != nil {
		return "", fmt.Errorf("stress template %q: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("stress template %q: %w", name, err)
	}
	return b.String(), nil
}
