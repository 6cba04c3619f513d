package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/gocyclegan/cyclegan/pipeline"
)

// parseFlags parses args into fset. For --help it prints header and the flags to stdout and
// returns flag.ErrHelp; an invalid setting comes back wrapped in errUsage.
func parseFlags(fset *pipeline.FlagSet, args []string, stdout io.Writer, header string) error {
	err := fset.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, header)
		fset.PrintUsage(stdout)
		return err
	}
	if err != nil {
		return fmt.Errorf("%w; %w", err, errUsage)
	}
	return nil
}
