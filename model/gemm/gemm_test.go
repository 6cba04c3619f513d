package gemm

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// naiveGemm is the reference: a plain triple loop over row-major matrices.
func naiveGemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var sum float64
			for p := 0; p < k; p++ {
				var av, bv float64
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				sum += av * bv
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * sum
			} else {
				c[i*ldc+j] = alpha*sum + beta*c[i*ldc+j]
			}
		}
	}
}

type gemmCase struct {
	transA, transB bool
	m, n, k        int
	pad            int // extra elements per row beyond the minimum leading dimension
	alpha, beta    float64
}

func gemmCases() []gemmCase {
	var cases []gemmCase
	sizes := [][3]int{{1, 1, 1}, {3, 5, 7}, {17, 33, 9}, {31, 1, 64}, {1, 47, 13}, {67, 129, 71}, {128, 256, 147}, {3, 1100, 1568}, {150, 70, 300}}
	for _, s := range sizes {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				cases = append(cases,
					gemmCase{ta, tb, s[0], s[1], s[2], 0, 1, 0},
					gemmCase{ta, tb, s[0], s[1], s[2], 3, -0.5, 1},
					gemmCase{ta, tb, s[0], s[1], s[2], 1, 2, 0.25},
				)
			}
		}
	}
	return cases
}

// matrices returns A, B and C for case tc with their leading dimensions, filled from rng.
func (tc gemmCase) matrices(rng *rand.Rand) (a []float64, lda int, b []float64, ldb int, c []float64, ldc int) {
	rowsA, colsA := tc.m, tc.k
	if tc.transA {
		rowsA, colsA = tc.k, tc.m
	}
	rowsB, colsB := tc.k, tc.n
	if tc.transB {
		rowsB, colsB = tc.n, tc.k
	}
	lda, ldb, ldc = colsA+tc.pad, colsB+tc.pad, tc.n+tc.pad
	fill := func(n int) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = rng.Float64()*2 - 1
		}
		return s
	}
	return fill(rowsA * lda), lda, fill(rowsB * ldb), ldb, fill(tc.m * ldc), ldc
}

func (tc gemmCase) String() string {
	return fmt.Sprintf("tA=%t,tB=%t,m=%d,n=%d,k=%d,pad=%d,alpha=%g,beta=%g", tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.pad, tc.alpha, tc.beta)
}

func TestDgemmMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range gemmCases() {
		t.Run(tc.String(), func(t *testing.T) {
			a, lda, b, ldb, c, ldc := tc.matrices(rng)
			want := append([]float64(nil), c...)
			naiveGemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, want, ldc)
			if tc.beta == 0 {
				for i := range c {
					c[i] = math.NaN() // beta == 0 must ignore what C holds
				}
			}
			if err := Dgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc); err != nil {
				t.Fatal(err)
			}
			tol := 1e-12 * float64(tc.k+1)
			compareC(t, tc, func(i int) (float64, float64) { return c[i], want[i] }, ldc, tol)
		})
	}
}

func TestSgemmMatchesNaive(t *testing.T) {
	testSgemm(t, func(ws *Workspace, tc gemmCase, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) error {
		return ws.Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, float32(tc.alpha), a, lda, b, ldb, float32(tc.beta), c, ldc)
	})
}

// TestSgemmFillMatchesNaive feeds B through a Filler that reads the same matrix.
func TestSgemmFillMatchesNaive(t *testing.T) {
	testSgemm(t, func(ws *Workspace, tc gemmCase, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) error {
		if tc.transA {
			return errNotApplicable // SgemmFill has no transposed A
		}
		fill := func(dst []float32, ld, k0, kn, n0, nn int) {
			for i := 0; i < kn; i++ {
				for j := 0; j < nn; j++ {
					if tc.transB {
						dst[i*ld+j] = b[(n0+j)*ldb+k0+i]
					} else {
						dst[i*ld+j] = b[(k0+i)*ldb+n0+j]
					}
				}
			}
		}
		return ws.SgemmFill(tc.m, tc.n, tc.k, float32(tc.alpha), a, lda, fill, float32(tc.beta), c, ldc)
	})
}

// TestSgemmPackedMatchesNaive packs A (transposed or not) once and feeds B through a Filler.
func TestSgemmPackedMatchesNaive(t *testing.T) {
	testSgemm(t, func(ws *Workspace, tc gemmCase, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) error {
		var pa PackedA
		if err := pa.Pack(tc.transA, tc.m, tc.k, a, lda); err != nil {
			return err
		}
		if tc.alpha != 1 {
			return errNotApplicable // packed matrices carry no alpha
		}
		fill := func(dst []float32, ld, k0, kn, n0, nn int) {
			for i := 0; i < kn; i++ {
				for j := 0; j < nn; j++ {
					if tc.transB {
						dst[i*ld+j] = b[(n0+j)*ldb+k0+i]
					} else {
						dst[i*ld+j] = b[(k0+i)*ldb+n0+j]
					}
				}
			}
		}
		return ws.SgemmPacked(&pa, tc.n, fill, float32(tc.beta), c, ldc)
	})
}

// TestPackRowsMatchesPack checks the row-callback packing against Pack on one product.
func TestPackRowsMatchesPack(t *testing.T) {
	const m, n, k = 13, 40, 300
	rng := rand.New(rand.NewPCG(5, 6))
	a := make([]float32, m*k)
	b := make([]float32, k*n)
	for i := range a {
		a[i] = float32(rng.Float64())
	}
	for i := range b {
		b[i] = float32(rng.Float64())
	}
	fill := func(dst []float32, ld, k0, kn, n0, nn int) {
		for i := 0; i < kn; i++ {
			copy(dst[i*ld:i*ld+nn], b[(k0+i)*n+n0:])
		}
	}
	var byMatrix, byRows PackedA
	if err := byMatrix.Pack(false, m, k, a, k); err != nil {
		t.Fatal(err)
	}
	if err := byRows.PackRows(m, k, func(i int, dst []float32) { copy(dst, a[i*k:(i+1)*k]) }); err != nil {
		t.Fatal(err)
	}
	var ws Workspace
	want, got := make([]float32, m*n), make([]float32, m*n)
	if err := ws.SgemmPacked(&byMatrix, n, fill, 0, want, n); err != nil {
		t.Fatal(err)
	}
	if err := ws.SgemmPacked(&byRows, n, fill, 0, got, n); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("C[%d] = %v with PackRows, %v with Pack", i, got[i], want[i])
		}
	}
}

// TestPackPartMatchesPack packs A in 1 to 5 parts, more parts than panels included, and
// checks each product against the one with Pack.
func TestPackPartMatchesPack(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, size := range [][3]int{{13, 40, 300}, {3, 33, 7}, {128, 64, 1152}, {25, 5, 257}} {
		m, n, k := size[0], size[1], size[2]
		lda := k + 2
		a := make([]float32, m*lda)
		b := make([]float32, k*n)
		for i := range a {
			a[i] = float32(rng.Float64())
		}
		for i := range b {
			b[i] = float32(rng.Float64())
		}
		fill := func(dst []float32, ld, k0, kn, n0, nn int) {
			for i := 0; i < kn; i++ {
				copy(dst[i*ld:i*ld+nn], b[(k0+i)*n+n0:])
			}
		}
		var ws Workspace
		var whole PackedA
		if err := whole.Pack(false, m, k, a, lda); err != nil {
			t.Fatal(err)
		}
		want := make([]float32, m*n)
		if err := ws.SgemmPacked(&whole, n, fill, 0, want, n); err != nil {
			t.Fatal(err)
		}
		for parts := 1; parts <= 5; parts++ {
			var pa PackedA
			if err := pa.Prepare(m, k); err != nil {
				t.Fatal(err)
			}
			for part := parts - 1; part >= 0; part-- {
				if err := pa.PackPart(part, parts, a, lda); err != nil {
					t.Fatal(err)
				}
			}
			got := make([]float32, m*n)
			if err := ws.SgemmPacked(&pa, n, fill, 0, got, n); err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%d×%d×%d in %d parts: C[%d] = %v, with Pack %v", m, n, k, parts, i, got[i], want[i])
				}
			}
		}
	}
	var pa PackedA
	if err := pa.Prepare(4, 4); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][2]int{{0, 0}, {2, 2}, {-1, 2}} {
		if err := pa.PackPart(bad[0], bad[1], make([]float32, 16), 4); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("PackPart(%d, %d) error = %v, want ErrInvalidArgument", bad[0], bad[1], err)
		}
	}
}

var errNotApplicable = errors.New("case does not apply")

type sgemmFunc func(ws *Workspace, tc gemmCase, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) error

func testSgemm(t *testing.T, run sgemmFunc) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	var ws Workspace // shared by all cases, so reuse across sizes is tested too
	for _, tc := range gemmCases() {
		t.Run(tc.String(), func(t *testing.T) {
			a64, lda, b64, ldb, c64, ldc := tc.matrices(rng)
			a, b, c := toFloat32(a64), toFloat32(b64), toFloat32(c64)
			want := append([]float64(nil), c64...)
			naiveGemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a64, lda, b64, ldb, tc.beta, want, ldc)
			if tc.beta == 0 {
				for i := range c {
					c[i] = float32(math.NaN())
				}
			}
			if tc.transA && tc.beta == 0 && tc.pad == 0 {
				// The package-level function, once per shape.
				if err := Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, float32(tc.alpha), a, lda, b, ldb, float32(tc.beta), c, ldc); err != nil {
					t.Fatal(err)
				}
			} else if err := run(&ws, tc, a, lda, b, ldb, c, ldc); errors.Is(err, errNotApplicable) {
				t.Skip(err)
			} else if err != nil {
				t.Fatal(err)
			}
			// float32 rounding of the inputs and of each partial sum: about 1e-7 relative per term.
			tol := 2e-6 * math.Sqrt(float64(tc.k+1)) * 4
			compareC(t, tc, func(i int) (float64, float64) { return float64(c[i]), want[i] }, ldc, tol)
		})
	}
}

// compareC checks the m×n block of C and that the padding columns beyond n were left alone.
func compareC(t *testing.T, tc gemmCase, at func(i int) (got, want float64), ldc int, tol float64) {
	t.Helper()
	for i := 0; i < tc.m; i++ {
		for j := 0; j < ldc; j++ {
			got, want := at(i*ldc + j)
			if j >= tc.n {
				if got != want && !(math.IsNaN(got) && tc.beta == 0) {
					t.Fatalf("C[%d,%d] is padding beyond n=%d and changed: got %g, want %g", i, j, tc.n, got, want)
				}
				continue
			}
			if math.IsNaN(got) || math.Abs(got-want) > tol {
				t.Fatalf("C[%d,%d] = %.9g, want %.9g (tolerance %g)", i, j, got, want, tol)
			}
		}
	}
}

func toFloat32(s []float64) []float32 {
	out := make([]float32, len(s))
	for i, v := range s {
		out[i] = float32(v)
		s[i] = float64(out[i]) // the reference uses the rounded value too
	}
	return out
}

func TestGemmRejectsInvalidArguments(t *testing.T) {
	buf := make([]float32, 12)
	tests := []struct {
		name           string
		transA, transB bool
		m, n, k        int
		lda, ldb, ldc  int
		lenA           int
	}{
		{name: "negative m", m: -1, n: 2, k: 2, lda: 2, ldb: 2, ldc: 2, lenA: 12},
		{name: "lda below k", m: 2, n: 2, k: 3, lda: 2, ldb: 2, ldc: 2, lenA: 12},
		{name: "transposed lda below m", transA: true, m: 3, n: 2, k: 2, lda: 2, ldb: 2, ldc: 2, lenA: 12},
		{name: "ldc below n", m: 2, n: 3, k: 2, lda: 2, ldb: 3, ldc: 2, lenA: 12},
		{name: "A too short", m: 3, n: 2, k: 3, lda: 3, ldb: 2, ldc: 2, lenA: 8},
		{name: "C too short", m: 7, n: 2, k: 1, lda: 1, ldb: 2, ldc: 2, lenA: 12},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, 1, buf[:tc.lenA], tc.lda, buf, tc.ldb, 0, buf, tc.ldc)
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("Sgemm error = %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestBuildNamesBackend(t *testing.T) {
	switch Build {
	case "pure-go", "openblas":
	default:
		t.Fatalf("Build = %q, want pure-go or openblas", Build)
	}
	switch Kernel() {
	case "avx512", "gonum", "openblas":
	default:
		t.Fatalf("Kernel() = %q, want avx512, gonum or openblas", Kernel())
	}
}
