// Command cyclegan trains and applies CycleGAN image-to-image translation models.
//
//	cyclegan train       all stages in one process on an embedded NATS server
//	cyclegan translate   translate image files with a checkpoint
//	cyclegan export      copy a checkpoint from the NATS Object Store to a file
//	cyclegan version     print the version and the GEMM build
//
// Run "cyclegan <subcommand> --help" for the flags of each.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one subcommand and returns the process exit status: 0 on success, 2 for a
// usage error, 1 for any other failure.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	var err error
	switch args[0] {
	case "train":
		err = runTrain(ctx, args[1:], stdout, stderr)
	case "translate":
		err = runTranslate(ctx, args[1:], stdout, stderr)
	case "export":
		err = runExport(ctx, args[1:], stdout, stderr)
	case "version":
		printVersion(stdout)
	case "help", "-h", "--help":
		usage(stdout)
	default:
		fmt.Fprintf(stderr, "cyclegan: unknown subcommand %q; run \"cyclegan help\" for the list\n", args[0])
		return 2
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "cyclegan %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "cyclegan %s: %v\n", args[0], err)
		return 1
	}
}

// errUsage marks an error in the command line rather than in the work.
var errUsage = errors.New("run with --help for usage")

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: cyclegan <subcommand> [flags]

Subcommands:
  train      train on a dataset: embedded NATS server and all four stages in one process
  translate  translate image files or folders with a checkpoint
  export     copy a checkpoint from the NATS Object Store to a file
  version    print the version and the GEMM build
  help       print this help

Run "cyclegan <subcommand> --help" for the flags of a subcommand. Every flag is also an
environment variable: --nats-url is CYCLEGAN_NATS_URL; a flag wins over the variable.
`)
}
