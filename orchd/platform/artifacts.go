package platform

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/durable"
)

// WriteArtifacts writes every artifact of beds durably (mode 0600 unless the
// artifact says otherwise). The artifacts of kind (the manager's unit or
// plist) get their directory created, and a service whose one differs from
// what was on disk is marked changed: its manager must reload it. manager
// maps each service to that artifact's path.
func WriteArtifacts(beds contract.Beds, kind string) (changed map[string]bool, manager map[string]string, err error) {
	changed, manager = map[string]bool{}, map[string]string{}
	for _, b := range beds.Beds {
		for _, a := range b.Artifacts {
			if a.Kind == kind {
				manager[b.Service] = a.Path
				if err := os.MkdirAll(filepath.Dir(a.Path), 0o755); err != nil {
					return nil, nil, fmt.Errorf("tend %s: %w", b.Service, err)
				}
				if old, err := os.ReadFile(a.Path); err != nil || string(old) != a.Content {
					changed[b.Service] = true
				}
			}
			mode := os.FileMode(a.Mode)
			if mode == 0 {
				mode = 0o600
			}
			if err := durable.WriteFile(a.Path, []byte(a.Content), mode); err != nil {
				return nil, nil, fmt.Errorf("tend %s: %w", b.Service, err)
			}
		}
	}
	return changed, manager, nil
}
