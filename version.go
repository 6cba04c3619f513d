package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/gocyclegan/cyclegan/model/gemm"
)

// printVersion writes the module version, the VCS revision of a binary built from a
// checkout, the Go version and the GEMM build (pure-go or openblas). It also names the
// float32 kernel in use: avx512 on CPUs that have it, else gonum or openblas.
func printVersion(w io.Writer) {
	version, revision := "(devel)", ""
	if info, ok := debug.ReadBuildInfo(); ok {
		if info.Main.Version != "" {
			version = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	fmt.Fprintf(w, "cyclegan %s", version)
	if revision != "" {
		fmt.Fprintf(w, " (%s)", revision)
	}
	fmt.Fprintf(w, " %s %s/%s gemm=%s kernel=%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, gemm.Build, gemm.Kernel())
}
