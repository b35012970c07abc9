package orchard

import (
	"fmt"
	"slices"
	"strings"

	"github.com/orchd/orchd/orchd/config"
	"github.com/orchd/orchd/orchd/spec"
)

// Warnings are things in an Orchfile and its overrides that parse but are
// probably mistakes: an --arg no file declares with ARG (it still defines the
// variable), and an AFTER naming a service that does not exist (AFTER is
// ordering only, so the service starts anyway).
func Warnings(c *config.Config, files []string, s *spec.Spec) []string {
	var out []string
	if len(c.Args) > 0 {
		// The files without overrides hold exactly the declared ARGs.
		if plain, err := spec.ParseFiles(files, spec.Options{}); err == nil {
			var declared []string
			for k := range plain.Args {
				declared = append(declared, k)
			}
			slices.Sort(declared)
			for _, k := range c.SortedArgs() {
				name, _, _ := strings.Cut(k, "=")
				if !slices.Contains(declared, name) {
					hint := "no ARG is declared"
					if len(declared) > 0 {
						hint = "declared: " + strings.Join(declared, ", ")
					}
					out = append(out, fmt.Sprintf("--arg %s: no Orchfile declares ARG %s (%s)", name, name, hint))
				}
			}
		}
	}
	for _, svc := range s.Services {
		for _, dep := range svc.After {
			if _, ok := s.Service(dep); !ok {
				out = append(out, fmt.Sprintf("service %s: AFTER %s: no such service (the ordering is ignored)", svc.Name, dep))
			}
		}
	}
	return out
}
