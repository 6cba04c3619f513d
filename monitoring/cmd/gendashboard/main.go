// Command gendashboard writes the "CycleGAN training" Grafana dashboard built by
// monitoring.Dashboard as JSON. `go generate ./monitoring` runs it with -o pointing at the
// provisioned dashboard file.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/gocyclegan/cyclegan/monitoring"
)

func main() {
	output := flag.String("o", monitoring.DashboardPath, "output `file` for the dashboard JSON, relative to the working directory")
	flag.Parse()

	if err := run(*output); err != nil {
		slog.Error("generate dashboard", "output", *output, "err", err)
		os.Exit(1)
	}
}

// run writes the dashboard to a temporary file next to output and renames it over output, so
// Grafana's file provider never reads a half-written file.
func run(output string) error {
	data, err := monitoring.DashboardJSON()
	if err != nil {
		return err
	}

	tmp, err := os.CreateTemp(filepath.Dir(output), ".gendashboard-*.json")
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", output, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename

	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("set mode of %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), output); err != nil {
		return fmt.Errorf("replace %s: %w", output, err)
	}
	slog.Info("wrote dashboard", "output", output, "bytes", len(data))
	return nil
}
