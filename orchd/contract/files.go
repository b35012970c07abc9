package contract

import (
	"encoding/json"
	"fmt"
)

// serviceKey is where a WithService file holds the cutting's Service.
const serviceKey = "service"

// ServiceFile makes a WithService File from v, a struct that marshals to a JSON
// object: its "service" member is dropped, FileArtifacts puts the cutting's back.
func ServiceFile(path string, mode uint32, v any) (File, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return File{}, fmt.Errorf("file %s: %w", path, err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return File{}, fmt.Errorf("file %s: not a JSON object: %w", path, err)
	}
	delete(obj, serviceKey)
	out, err := json.MarshalIndent(obj, "", "  ")
	if err != nil {
		return File{}, fmt.Errorf("file %s: %w", path, err)
	}
	return File{Path: path, Content: string(out) + "\n", Mode: mode, WithService: true}, nil
}

// FileArtifacts renders the cutting's Files as the artifacts a platform
// installs, with the cutting's Service in every WithService file.
func (c Cutting) FileArtifacts() ([]Artifact, error) {
	var out []Artifact
	for _, f := range c.Files {
		content := f.Content
		if f.WithService {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal([]byte(f.Content), &obj); err != nil {
				return nil, fmt.Errorf("file %s: not a JSON object: %w", f.Path, err)
			}
			svc, err := json.Marshal(c.Service)
			if err != nil {
				return nil, fmt.Errorf("file %s: %w", f.Path, err)
			}
			obj[serviceKey] = svc
			b, err := json.MarshalIndent(obj, "", "  ")
			if err != nil {
				return nil, fmt.Errorf("file %s: %w", f.Path, err)
			}
			content = string(b) + "\n"
		}
		out = append(out, Artifact{Kind: KindFile, Path: f.Path, Content: content, Mode: f.Mode})
	}
	return out, nil
}
