package ops

import (
	"fmt"
	"runtime"

	"github.com/gocyclegan/cyclegan/model/gemm"
)

// kn2rowMaxOut is the largest output channel count for which stride-1 convolutions use the
// kn2row form: one GEMM with the kernel taps as extra rows, then shifted sums. An im2col GEMM
// with so few rows uses each im2col element too few times to pay for building it.
const kn2rowMaxOut = 8

// worker is the scratch of one goroutine of a conv op.
type worker struct {
	ws   gemm.Workspace
	buf  scratch
	grid scratch // padded input-gradient planes (backwardDataCol2im)
}

// convScratch is the reusable memory of a conv op. The machine runs one op at a time, so the
// op keeps it between calls.
type convScratch struct {
	team    *teamHandle // the graph's helper goroutines under a buffer plan, else nil
	workers []worker
	padded  scratch // the padded input of one sample (kn2row)
	weights scratch // rearranged weights (kn2row, flipped kernels)
	product scratch // kn2row GEMM products, or the padded-input gradient
	inner   *convScratch
	// packed is the float32 weight matrix of forwardImplicit, packed once per call and shared
	// by the workers.
	packed gemm.PackedA
}

// workerSet returns one worker per usable CPU.
func (s *convScratch) workerSet() []worker {
	n := runtime.GOMAXPROCS(0)
	if len(s.workers) != n {
		s.workers = make([]worker, n)
	}
	return s.workers
}

func (s *convScratch) innerScratch() *convScratch {
	if s.inner == nil {
		s.inner = &convScratch{}
	}
	s.inner.workers = s.workerSet()
	s.inner.team = s.team
	return s.inner
}

// span returns part i of parts of [0, total), with boundaries rounded to multiples of align.
func span(total, parts, i, align int) (lo, hi int) {
	units := (total + align - 1) / align
	lo = min(total, units*i/parts*align)
	hi = min(total, units*(i+1)/parts*align)
	return lo, hi
}

// fillFunc writes the block B[k0:k0+kn, n0:n0+nn] of an implicit matrix into dst with row
// stride ld, as gemm.Filler does for float32.
type fillFunc[T float] func(dst []T, ld, k0, kn, n0, nn int)

// fillBlockElements bounds the B block that the float64 path materialises at a time.
const fillBlockElements = 64 * 1024

// gemmFill computes C = A·B + beta·C where the k×n matrix B is produced by fill.
func gemmFill[T float](w *worker, m, n, k int, a []T, lda int, fill fillFunc[T], beta T, c []T, ldc int) error {
	if f, ok := any(fill).(fillFunc[float32]); ok {
		return w.ws.SgemmFill(m, n, k, 1, any(a).([]float32), lda, gemm.Filler(f), float32(beta), any(c).([]float32), ldc)
	}
	cols := max(1, min(n, fillBlockElements/max(k, 1)))
	buf := scratchSlice[T](&w.buf, k*cols)
	for n0 := 0; n0 < n; n0 += cols {
		nn := min(cols, n-n0)
		fill(buf, nn, 0, k, n0, nn)
		if err := gemmT(w, false, false, m, nn, k, a, lda, buf, nn, beta, c[n0:], ldc); err != nil {
			return err
		}
	}
	return nil
}

// gemmT computes c = op(a)·op(b) + beta·c for row-major matrices of either element type.
func gemmT[T float](w *worker, transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) error {
	if a32, ok := any(a).([]float32); ok {
		return w.ws.Sgemm(transA, transB, m, n, k, 1, a32, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	}
	return gemm.Dgemm(transA, transB, m, n, k, 1, any(a).([]float64), lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
}

// convForward computes y = conv(x, w) + b for all samples; b may be nil.
func convForward[T float](g *convGeom, s *convScratch, x, w, b, y []T) error {
	var err error
	if g.stride == 1 && g.cout <= kn2rowMaxOut {
		err = forwardKn2row(g, s, x, w, b, y)
	} else {
		err = forwardImplicit(g, s, x, w, b, y)
	}
	if err != nil {
		return fmt.Errorf("convolution %v: %w", g, err)
	}
	return nil
}

// forwardImplicit multiplies the weight [cout, cin·k·k] by the im2col matrix of each sample,
// which the GEMM builds block by block. The workers split the output pixels.
func forwardImplicit[T float](g *convGeom, s *convScratch, x, w, b, y []T) error {
	if w32, ok := any(w).([]float32); ok {
		if err := packWeights(s, g.cout, g.colRows(), w32); err != nil {
			return err
		}
	}
	return forwardPacked(g, s, x, w, b, y)
}

// packWeights packs the m×k row-major weight w into s.packed, split across the workers when
// it is large enough to pay for starting them.
func packWeights(s *convScratch, m, k int, w []float32) error {
	if err := s.packed.Prepare(m, k); err != nil {
		return err
	}
	workers := s.workerSet()
	if m*k < minParallelWork {
		workers = workers[:1]
	}
	return s.team.runWorkers(workers, func(i int, _ *worker) error {
		return s.packed.PackPart(i, len(workers), w, k)
	})
}

// forwardPacked is forwardImplicit with a float32 weight already in s.packed; w is read
// only for float64.
func forwardPacked[T float](g *convGeom, s *convScratch, x, w, b, y []T) error {
	rows, n := g.colRows(), g.colCols()
	inSize, outSize := g.cin*g.h*g.w, g.cout*n
	xpad := scratchSlice[T](&s.padded, g.cin*g.paddedH()*g.paddedW())
	workers := s.workerSet()
	for i := 0; i < g.n; i++ {
		padInput(g, s.team, x[i*inSize:(i+1)*inSize], xpad)
		yi := y[i*outSize : (i+1)*outSize]
		err := s.team.runWorkers(workers, func(wi int, wk *worker) error {
			lo, hi := span(n, len(workers), wi, 32)
			if lo == hi {
				return nil
			}
			fill := func(dst []T, ld, k0, kn, n0, nn int) { im2colBlock(g, xpad, dst, ld, k0, kn, lo+n0, nn) }
			var err error
			if f, ok := any(fill).(func([]float32, int, int, int, int, int)); ok {
				err = wk.ws.SgemmPacked(&s.packed, hi-lo, f, 0, any(yi[lo:]).([]float32), n)
			} else {
				err = gemmFill(wk, g.cout, hi-lo, rows, w, rows, fill, 0, yi[lo:], n)
			}
			if err != nil {
				return err
			}
			addBiasColumns(yi, b, n, lo, hi)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// forwardKn2row computes a stride-1 convolution with few output channels as
// Z = W'·Xpad, W' [cout·k·k, cin] holding each kernel tap as a row, then sums Z's rows
// shifted by their tap's offset: y[o, oh, ow] = b[o] + Σ_tap Z[o·k·k + tap, (oh+kh)·wp + ow+kw].
func forwardKn2row[T float](g *convGeom, s *convScratch, x, w, b, y []T) error {
	kk, hp, wp := g.k*g.k, g.paddedH(), g.paddedW()
	p := hp * wp
	xpad := scratchSlice[T](&s.padded, g.cin*p)
	wt := scratchSlice[T](&s.weights, g.cout*kk*g.cin)
	z := scratchSlice[T](&s.product, g.cout*kk*p)
	for o := 0; o < g.cout; o++ {
		for c := 0; c < g.cin; c++ {
			for t := 0; t < kk; t++ {
				wt[(o*kk+t)*g.cin+c] = w[(o*g.cin+c)*kk+t]
			}
		}
	}
	inSize, outSize := g.cin*g.h*g.w, g.cout*g.ho*g.wo
	workers := s.workerSet()
	for i := 0; i < g.n; i++ {
		padInput(g, s.team, x[i*inSize:(i+1)*inSize], xpad)
		err := s.team.runWorkers(workers, func(wi int, wk *worker) error {
			lo, hi := span(p, len(workers), wi, 32)
			if lo == hi {
				return nil
			}
			return gemmT(wk, false, false, g.cout*kk, hi-lo, g.cin, wt, g.cin, xpad[lo:], p, 0, z[lo:], p)
		})
		if err != nil {
			return err
		}
		yi := y[i*outSize : (i+1)*outSize]
		s.team.parallelFor(g.cout*g.ho, outSize*kk, func(lo, hi int) {
			// Rows r = (o, oh) of the output, tap by tap. Each tap's plane of z is then read
			// in order once while this part's output rows stay in cache. Every output value
			// still adds the taps in the same order.
			for r := lo; r < hi; r++ {
				var bias T
				if b != nil {
					bias = b[r/g.ho]
				}
				out := yi[r*g.wo : (r+1)*g.wo]
				for ow := range out {
					out[ow] = bias
				}
			}
			for kh := 0; kh < g.k; kh++ {
				for kw := 0; kw < g.k; kw++ {
					for r := lo; r < hi; r++ {
						o, oh := r/g.ho, r%g.ho
						out := yi[r*g.wo : (r+1)*g.wo]
						row := z[(o*kk+kh*g.k+kw)*p+(oh+kh)*wp+kw:][:len(out)]
						for ow, v := range row {
							out[ow] += v
						}
					}
				}
			}
		})
	}
	return nil
}

// padInput writes one sample x [cin, h, w] padded by g.pad (zeros or reflection) into xpad.
func padInput[T float](g *convGeom, t *teamHandle, x, xpad []T) {
	hp, wp, p := g.paddedH(), g.paddedW(), g.pad
	t.parallelFor(g.cin, g.cin*hp*wp, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			src, dst := x[c*g.h*g.w:(c+1)*g.h*g.w], xpad[c*hp*wp:(c+1)*hp*wp]
			if g.reflect {
				reflectPadForward(src, dst, g.h, g.w, p)
				continue
			}
			clear(dst[:p*wp])
			clear(dst[(p+g.h)*wp:])
			for r := 0; r < g.h; r++ {
				row := dst[(p+r)*wp : (p+r+1)*wp]
				clear(row[:p])
				copy(row[p:p+g.w], src[r*g.w:(r+1)*g.w])
				clear(row[p+g.w:])
			}
		}
	})
}

// convBackwardData computes dx, the gradient of conv(x, w) with respect to x, from dy. It is
// also the forward pass of the transposed convolution (then with a bias b, else nil).
func convBackwardData[T float](g *convGeom, s *convScratch, dy, w, b, dx []T) error {
	var err error
	if g.flipped != nil {
		err = backwardDataFlipped(g, s, dy, w, b, dx)
	} else {
		err = backwardDataCol2im(g, s, dy, w, b, dx)
	}
	if err != nil {
		return fmt.Errorf("convolution input gradient %v: %w", g, err)
	}
	return nil
}

// backwardDataFlipped computes the input gradient of a stride-1 convolution as a
// convolution of dy with the flipped kernel (see convGeom.flipped).
func backwardDataFlipped[T float](g *convGeom, s *convScratch, dy, w, b, dx []T) error {
	f := g.flipped
	kk := g.k * g.k
	inner := s.innerScratch()
	run := func(out []T) error {
		w32, ok := any(w).([]float32)
		if !ok || f.cout <= kn2rowMaxOut {
			return convForward(f, inner, dy, flipKernel(g, s, w), nil, out)
		}
		// Pack the flipped kernel straight from w: row c holds, for each output channel o,
		// w[o, c] reversed.
		err := inner.packed.PackRows(g.cin, g.cout*kk, func(c int, dst []float32) {
			for o := 0; o < g.cout; o++ {
				src := w32[(o*g.cin+c)*kk : (o*g.cin+c+1)*kk]
				row := dst[o*kk : (o+1)*kk]
				for t, v := range src {
					row[kk-1-t] = v
				}
			}
		})
		if err != nil {
			return err
		}
		return forwardPacked(f, inner, dy, nil, nil, out)
	}
	if !g.reflect {
		if err := run(dx); err != nil {
			return err
		}
		addBiasPlanes(dx, b, g.n, g.h*g.w)
		return nil
	}
	hp, wp := g.paddedH(), g.paddedW()
	dpad := scratchSlice[T](&s.product, g.n*g.cin*hp*wp)
	if err := run(dpad); err != nil {
		return err
	}
	planes := g.n * g.cin
	s.team.parallelFor(planes, planes*hp*wp, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			reflectPadBackward(dx[c*g.h*g.w:(c+1)*g.h*g.w], dpad[c*hp*wp:(c+1)*hp*wp], g.h, g.w, g.pad)
		}
	})
	addBiasPlanes(dx, b, g.n, g.h*g.w)
	return nil
}

// flipKernel returns w [cout, cin, k, k] with its channel axes swapped and each kernel
// rotated by 180°, as [cin, cout, k, k].
func flipKernel[T float](g *convGeom, s *convScratch, w []T) []T {
	kk := g.k * g.k
	flipped := scratchSlice[T](&s.weights, g.cin*g.cout*kk)
	for c := 0; c < g.cin; c++ {
		for o := 0; o < g.cout; o++ {
			src := w[(o*g.cin+c)*kk : (o*g.cin+c+1)*kk]
			dst := flipped[(c*g.cout+o)*kk : (c*g.cout+o+1)*kk]
			for t, v := range src {
				dst[kk-1-t] = v
			}
		}
	}
	return flipped
}

// backwardDataCol2im computes the input gradient as col2im(Wᵀ·dy), a band of output pixels at
// a time. The workers split the input channels, whose gradients do not overlap.
func backwardDataCol2im[T float](g *convGeom, s *convScratch, dy, w, b, dx []T) error {
	kk, n := g.k*g.k, g.colCols()
	inSize, outSize := g.cin*g.h*g.w, g.cout*n
	workers := s.workerSet()
	for i := 0; i < g.n; i++ {
		dyi, dxi := dy[i*outSize:(i+1)*outSize], dx[i*inSize:(i+1)*inSize]
		err := s.team.runWorkers(workers, func(wi int, wk *worker) error {
			c0, c1 := span(g.cin, len(workers), wi, 1)
			if c0 == c1 {
				return nil
			}
			rows := (c1 - c0) * kk
			band := max(32, min(n, 4*fillBlockElements/rows)/32*32)
			band = min(band, n)
			cols := scratchSlice[T](&wk.buf, rows*band)
			// The bands add up on the padded grid, where every tap's row of a band is a
			// contiguous run (evenly spaced for stride 2) with no index lookups. The grid is
			// folded onto dx at the end.
			plane := g.paddedH() * g.paddedW()
			grid := scratchSlice[T](&wk.grid, (c1-c0)*plane)
			clear(grid)
			for p0 := 0; p0 < n; p0 += band {
				nn := min(band, n-p0)
				if err := gemmT(wk, true, false, rows, nn, g.cout, w[c0*kk:], g.colRows(), dyi[p0:], n, 0, cols, nn); err != nil {
					return err
				}
				col2imPadded(g, cols, nn, c1-c0, p0, nn, grid)
			}
			for c := c0; c < c1; c++ {
				foldPadded(g, grid[(c-c0)*plane:(c-c0+1)*plane], dxi[c*g.h*g.w:(c+1)*g.h*g.w])
			}
			if b != nil {
				addBiasPlanes(dxi[c0*g.h*g.w:c1*g.h*g.w], b[c0:c1], 1, g.h*g.w)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// convBackwardFilter computes dw, the gradient of conv(x, w) with respect to w, from x and dy;
// with accumulate it adds the gradient to dw.
func convBackwardFilter[T float](g *convGeom, s *convScratch, x, dy, dw []T, accumulate bool) error {
	var err error
	if g.stride == 1 && g.cout <= kn2rowMaxOut {
		err = filterKn2row(g, s, x, dy, dw, accumulate)
	} else {
		err = filterImplicit(g, s, x, dy, dw, accumulate)
	}
	if err != nil {
		return fmt.Errorf("convolution weight gradient %v: %w", g, err)
	}
	return nil
}

// filterImplicit computes dw = Σ_samples dy·colsᵀ, building colsᵀ block by block; the
// workers split the columns of dw.
func filterImplicit[T float](g *convGeom, s *convScratch, x, dy, dw []T, accumulate bool) error {
	rows, n := g.colRows(), g.colCols()
	inSize, outSize := g.cin*g.h*g.w, g.cout*n
	xpad := scratchSlice[T](&s.padded, g.cin*g.paddedH()*g.paddedW())
	workers := s.workerSet()
	for i := 0; i < g.n; i++ {
		padInput(g, s.team, x[i*inSize:(i+1)*inSize], xpad)
		var beta T
		if i > 0 || accumulate {
			beta = 1
		}
		err := s.team.runWorkers(workers, func(wi int, wk *worker) error {
			lo, hi := span(rows, len(workers), wi, 32)
			if lo == hi {
				return nil
			}
			fill := func(dst []T, ld, k0, kn, n0, nn int) { im2colBlockTransposed(g, xpad, dst, ld, k0, kn, lo+n0, nn) }
			return gemmFill(wk, g.cout, hi-lo, n, dy[i*outSize:(i+1)*outSize], n, fill, beta, dw[lo:], rows)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// filterKn2row computes the weight gradient of a stride-1 convolution with few output
// channels: dw[o, c, tap] = Σ_r xpad[c, r]·Dp[o, r − shift(tap)], where Dp[o] is dy[o] laid
// out on the padded grid (row stride wp, zeros elsewhere) and shift(tap) = kh·wp + kw. The
// workers split the input channels.
func filterKn2row[T float](g *convGeom, s *convScratch, x, dy, dw []T, accumulate bool) error {
	kk, hp, wp := g.k*g.k, g.paddedH(), g.paddedW()
	p := hp * wp
	// lead zeros in front of each Dp plane stand for the negative indices r − shift(tap).
	lead := (g.k-1)*wp + g.k - 1
	xpad := scratchSlice[T](&s.padded, g.cin*p)
	grid := scratchSlice[T](&s.product, g.cout*(lead+p))
	inSize, outPlane := g.cin*g.h*g.w, g.ho*g.wo
	workers := s.workerSet()
	for i := 0; i < g.n; i++ {
		padInput(g, s.team, x[i*inSize:(i+1)*inSize], xpad)
		clear(grid)
		for o := 0; o < g.cout; o++ {
			d := dy[(i*g.cout+o)*outPlane : (i*g.cout+o+1)*outPlane]
			plane := grid[o*(lead+p)+lead:]
			for oh := 0; oh < g.ho; oh++ {
				copy(plane[oh*wp:oh*wp+g.wo], d[oh*g.wo:(oh+1)*g.wo])
			}
		}
		var beta T
		if i > 0 || accumulate {
			beta = 1
		}
		err := s.team.runWorkers(workers, func(wi int, wk *worker) error {
			c0, c1 := span(g.cin, len(workers), wi, 1)
			if c0 == c1 {
				return nil
			}
			for o := 0; o < g.cout; o++ {
				plane := grid[o*(lead+p) : (o+1)*(lead+p)]
				fill := func(dst []T, ld, k0, kn, n0, nn int) { shiftedGradBlock(g, plane, lead, dst, ld, k0, kn, n0, nn) }
				if err := gemmFill(wk, c1-c0, kk, p, xpad[c0*p:], p, fill, beta, dw[(o*g.cin+c0)*kk:], kk); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// shiftedGradBlock writes B[r, tap] = Dp[r − shift(tap)] for r in [k0, k0+kn) and taps in
// [n0, n0+nn) (see filterKn2row); plane holds Dp after lead zeros.
func shiftedGradBlock[T float](g *convGeom, plane []T, lead int, dst []T, ld, k0, kn, n0, nn int) {
	wp := g.paddedW()
	var starts [64]int
	for t0 := 0; t0 < nn; t0 += len(starts) {
		tn := min(len(starts), nn-t0)
		for t := 0; t < tn; t++ {
			tap := n0 + t0 + t
			starts[t] = lead + k0 - (tap/g.k*wp + tap%g.k)
		}
		for i := 0; i < kn; i++ {
			row := dst[i*ld+t0 : i*ld+t0+tn]
			for t, st := range starts[:tn] {
				row[t] = plane[st+i]
			}
		}
	}
}

// im2colBlock writes rows [k0, k0+kn) and pixels [n0, n0+nn) of the im2col matrix of one
// padded sample xpad [cin, hp, wp] into dst with row stride ld. Row (c·k + kh)·k + kw holds,
// for each output pixel, the input value that kernel tap (kh, kw) of channel c multiplies.
func im2colBlock[T float](g *convGeom, xpad, dst []T, ld, k0, kn, n0, nn int) {
	hp, wp := g.paddedH(), g.paddedW()
	oh0, ow0 := n0/g.wo, n0%g.wo
	c, kh, kw := k0/(g.k*g.k), k0/g.k%g.k, k0%g.k
	for i := 0; i < kn; i++ {
		base := xpad[(c*hp+kh)*wp+kw:]
		out := dst[i*ld : i*ld+nn]
		oh, ow := oh0, ow0
		for j := 0; j < nn; oh, ow = oh+1, 0 {
			run := min(g.wo-ow, nn-j)
			seg := out[j : j+run]
			j += run
			src := base[oh*g.stride*wp+ow*g.stride:]
			if g.stride == 1 {
				copyShort(seg, src[:len(seg)])
				continue
			}
			for t := range seg {
				seg[t] = src[t*g.stride]
			}
		}
		if kw++; kw == g.k {
			kw = 0
			if kh++; kh == g.k {
				kh, c = 0, c+1
			}
		}
	}
}

// copyShort copies src into dst (of the same length) eight values at a time. The runs of
// im2col are output rows, often 16 or 32 values, too short for copy's call to pay off.
func copyShort[T float](dst, src []T) {
	src = src[:len(dst)]
	t := 0
	for ; t+8 <= len(dst); t += 8 {
		d, s := (*[8]T)(dst[t:]), (*[8]T)(src[t:])
		d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
	}
	for ; t < len(dst); t++ {
		dst[t] = src[t]
	}
}

// im2colBlockTransposed writes the transposed im2col matrix of one padded sample:
// dst[i·ld + j] holds pixel k0+i of row n0+j.
func im2colBlockTransposed[T float](g *convGeom, xpad, dst []T, ld, k0, kn, n0, nn int) {
	j := 0
	for ; j+8 <= nn; j += 8 {
		im2colTransposed8(g, xpad, dst[j:], ld, k0, kn, n0+j)
	}
	for ; j < nn; j++ {
		im2colTransposedColumn(g, xpad, dst[j:], ld, k0, kn, n0+j)
	}
}

// rowBase returns the offset in a padded sample of the first value that im2col row r reads.
func (g *convGeom) rowBase(r int) int {
	kk := g.k * g.k
	c, kh, kw := r/kk, r/g.k%g.k, r%g.k
	return (c*g.paddedH()+kh)*g.paddedW() + kw
}

// im2colTransposed8 writes columns [0, 8) of dst, pixels [k0, k0+kn) of im2col rows
// [r0, r0+8). Within one output row a column's pixels are evenly spaced in xpad, so the
// loop reads eight runs in order and writes each pixel's eight values together. In
// BenchmarkIm2col that took about half the thread CPU time of gathering pixel by pixel
// (2-core AVX-512 Xeon, Go 1.26, float32).
func im2colTransposed8[T float](g *convGeom, xpad, dst []T, ld, k0, kn, r0 int) {
	wp, stride := g.paddedW(), g.stride
	var bases [8]int
	for q := range bases {
		bases[q] = g.rowBase(r0 + q)
	}
	oh, ow := k0/g.wo, k0%g.wo
	for i := 0; i < kn; oh, ow = oh+1, 0 {
		run := min(g.wo-ow, kn-i)
		off := oh*stride*wp + ow*stride
		span := (run-1)*stride + 1
		s0 := xpad[bases[0]+off : bases[0]+off+span]
		s1 := xpad[bases[1]+off:][:len(s0)]
		s2 := xpad[bases[2]+off:][:len(s0)]
		s3 := xpad[bases[3]+off:][:len(s0)]
		s4 := xpad[bases[4]+off:][:len(s0)]
		s5 := xpad[bases[5]+off:][:len(s0)]
		s6 := xpad[bases[6]+off:][:len(s0)]
		s7 := xpad[bases[7]+off:][:len(s0)]
		for t := 0; t < run; t++ {
			p := t * stride
			d := (*[8]T)(dst[(i+t)*ld:])
			d[0], d[1], d[2], d[3] = s0[p], s1[p], s2[p], s3[p]
			d[4], d[5], d[6], d[7] = s4[p], s5[p], s6[p], s7[p]
		}
		i += run
	}
}

// im2colTransposedColumn writes column 0 of dst, pixels [k0, k0+kn) of im2col row r.
func im2colTransposedColumn[T float](g *convGeom, xpad, dst []T, ld, k0, kn, r int) {
	wp, stride := g.paddedW(), g.stride
	base := xpad[g.rowBase(r):]
	oh, ow := k0/g.wo, k0%g.wo
	for i := 0; i < kn; oh, ow = oh+1, 0 {
		run := min(g.wo-ow, kn-i)
		src := base[oh*stride*wp+ow*stride:]
		for t := 0; t < run; t++ {
			dst[(i+t)*ld] = src[t*stride]
		}
		i += run
	}
}

// col2imPadded adds a band of the im2col-shaped gradient of `channels` input channels, pixels
// [p0, p0+nn) stored with row stride ld, onto their gradient on the padded grid
// [channels, hp, wp].
func col2imPadded[T float](g *convGeom, cols []T, ld, channels, p0, nn int, grid []T) {
	hp, wp, kk, stride := g.paddedH(), g.paddedW(), g.k*g.k, g.stride
	for c := 0; c < channels; c++ {
		plane := grid[c*hp*wp : (c+1)*hp*wp]
		for t := 0; t < kk; t++ {
			kh, kw := t/g.k, t%g.k
			src := cols[(c*kk+t)*ld:][:nn]
			oh, ow := p0/g.wo, p0%g.wo
			for j := 0; j < nn; oh, ow = oh+1, 0 {
				run := min(g.wo-ow, nn-j)
				in := src[j : j+run]
				j += run
				start := (oh*stride+kh)*wp + ow*stride + kw
				if stride == 1 {
					dst := plane[start : start+run]
					for i, v := range in {
						dst[i] += v
					}
					continue
				}
				dst := plane[start : start+(run-1)*stride+1]
				for i, v := range in {
					dst[i*stride] += v
				}
			}
		}
	}
}

// foldPadded writes the gradient of one input channel [h, w] from its gradient on the padded
// grid [hp, wp]: the inner part, plus for reflection padding the mirrored border.
func foldPadded[T float](g *convGeom, grid, dx []T) {
	if g.reflect {
		reflectPadBackward(dx, grid, g.h, g.w, g.pad)
		return
	}
	wp := g.paddedW()
	for r := 0; r < g.h; r++ {
		copy(dx[r*g.w:(r+1)*g.w], grid[(r+g.pad)*wp+g.pad:])
	}
}

// addBiasColumns adds b[c] to columns [lo, hi) of each row c of y [c, n]; b may be nil.
func addBiasColumns[T float](y, b []T, n, lo, hi int) {
	for c, bc := range b {
		row := y[c*n+lo : c*n+hi]
		for i := range row {
			row[i] += bc
		}
	}
}

// addBiasPlanes adds b[c] to every plane c of each of the samples of y [samples, c, size].
func addBiasPlanes[T float](y, b []T, samples, size int) {
	for i := 0; i < samples; i++ {
		for c, bc := range b {
			plane := y[(i*len(b)+c)*size : (i*len(b)+c+1)*size]
			for j := range plane {
				plane[j] += bc
			}
		}
	}
}

// biasGradient sums dy [n, c, planeSize] over samples and positions into db [c], or with
// accumulate adds the sums to db. Each channel's sum is one float64 accumulation in a fixed
// order, so the result does not depend on how the channels are split across goroutines.
func biasGradient[T float](t *teamHandle, dy, db []T, n, planeSize int, accumulate bool) {
	c := len(db)
	t.parallelFor(c, n*c*planeSize, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			var sum float64
			for i := 0; i < n; i++ {
				for _, v := range dy[(i*c+ch)*planeSize : (i*c+ch+1)*planeSize] {
					sum += float64(v)
				}
			}
			if accumulate {
				db[ch] += T(sum)
			} else {
				db[ch] = T(sum)
			}
		}
	})
}
