package platform

import (
	"fmt"

	"github.com/orchd/orchd/orchd/contract"
)

// PlantBeds is the loop every platform's Plant shares: one Bed per cutting,
// in order. A skipped cutting's Bed carries only its reason; for the others
// own returns the platform's artifacts (unit, plist, env file) and the
// cutting's files (FileArtifacts, with the row's Service) follow them.
func PlantBeds(c contract.Cuttings, platformName, scope string, own func(cut contract.Cutting, label string) ([]contract.Artifact, error)) (contract.Beds, error) {
	env := c.Env
	beds := contract.Beds{Version: contract.Version, Platform: platformName, Namespace: env.Namespace, Scope: scope, StateDir: env.StateDir, Beds: []contract.Bed{}}
	for _, cut := range c.Cuttings {
		bed := NewBed(env.Namespace, cut)
		if cut.Skip == "" {
			arts, err := own(cut, bed.Label)
			if err == nil {
				var files []contract.Artifact
				files, err = cut.FileArtifacts()
				arts = append(arts, files...)
			}
			if err != nil {
				return contract.Beds{}, fmt.Errorf("plant %s: %w", cut.Service.Name, err)
			}
			bed.Artifacts = append(bed.Artifacts, arts...)
		}
		beds.Beds = append(beds.Beds, bed)
	}
	return beds, nil
}
