// Command cyclegan trains and applies CycleGAN image-to-image translation models.
//
// Run "cyclegan help" for the subcommands.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "version":
		printVersion(stdout)
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "cyclegan: unknown subcommand %q; run \"cyclegan help\" for the list\n", args[0])
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: cyclegan <subcommand> [flags]

Subcommands:
  version   print the version and build
  help      print this help
`)
}

func printVersion(w io.Writer) {
	version := "(devel)"
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		version = info.Main.Version
	}
	fmt.Fprintf(w, "cyclegan %s\n", version)
}
