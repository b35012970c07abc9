package orchard

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/orchd/orchd/orchd/config"
	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/spec"
)

// ParseSpec parses files (or, when none are given, the configured Orchfile
// and overlays) and writes the Spec's warnings to warn unless c.Quiet.
func ParseSpec(c *config.Config, files []string, warn io.Writer) (*spec.Spec, error) {
	if len(files) == 0 {
		files = c.Files()
	}
	s, err := spec.ParseFiles(files, spec.Options{Args: c.Args})
	if err != nil {
		return nil, err
	}
	if !c.Quiet {
		for _, w := range Warnings(c, files, s) {
			fmt.Fprintln(warn, "warning:", w)
		}
	}
	return s, nil
}

// ReadSpec reads a Spec row (the output of parse, maybe spliced) and checks
// what the parser would have: its version and service names, which become
// paths and labels.
func ReadSpec(r io.Reader) (*spec.Spec, error) {
	var s spec.Spec
	if err := readJSON(r, "Spec", &s); err != nil {
		return nil, err
	}
	if s.Version != spec.Version {
		return nil, fmt.Errorf("stdin: Spec version %q: this orchd reads %q (produce it with `orchd parse`)", s.Version, spec.Version)
	}
	for _, svc := range s.Services {
		if err := validName("Spec", svc.Name); err != nil {
			return nil, err
		}
	}
	return &s, nil
}

// ReadCuttings reads a Cuttings row (the output of sow) and checks its
// version and service names.
func ReadCuttings(r io.Reader) (*contract.Cuttings, error) {
	var c contract.Cuttings
	if err := readJSON(r, "Cuttings", &c); err != nil {
		return nil, err
	}
	if c.Version != contract.Version {
		return nil, fmt.Errorf("stdin: Cuttings version %q: this orchd reads %q (produce it with `orchd sow`)", c.Version, contract.Version)
	}
	for _, cut := range c.Cuttings {
		if err := validName("Cuttings", cut.Service.Name); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// ReadBeds reads a Beds row (the output of plant) and checks its version.
func ReadBeds(r io.Reader) (*contract.Beds, error) {
	var b contract.Beds
	if err := readJSON(r, "Beds", &b); err != nil {
		return nil, err
	}
	if b.Version != contract.Version {
		return nil, fmt.Errorf("stdin: Beds version %q: this orchd reads %q (produce it with `orchd plant`)", b.Version, contract.Version)
	}
	return &b, nil
}

// CheckNamespace refuses a row's namespace that is no DNS label: it names
// containerd namespaces, cgroups and paths.
func CheckNamespace(row, ns string) error {
	if !config.ValidNamespace(ns) {
		return fmt.Errorf("stdin: %s namespace %q is invalid: want a DNS label (lowercase letters, digits and -, at most 63)", row, ns)
	}
	return nil
}

// WriteJSON writes a row (or any result) as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func validName(row, name string) error {
	if !spec.ValidServiceName(name) {
		return fmt.Errorf("stdin: %s service name %q is invalid: want a lowercase letter, then lowercase letters, digits or -, at most 63 characters", row, name)
	}
	return nil
}

// readJSON decodes one JSON document from r, naming the row in errors.
func readJSON(r io.Reader, what string, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("stdin: no %s JSON (pipe one in, e.g. `orchd parse Orchfile | orchd sow`)", what)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("stdin: %s JSON is malformed at byte %d: %v", what, se.Offset, err)
		}
		return fmt.Errorf("stdin: %s JSON: %w", what, err)
	}
	if dec.More() {
		return fmt.Errorf("stdin: trailing data after the %s JSON document", what)
	}
	return nil
}
