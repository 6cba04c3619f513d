package ops

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// benchConv lists the hot convolutions of the CycleGAN generator at the cpu preset (64×64
// crops, 32 base channels) and the discriminator's largest one.
var benchConv = []struct {
	name      string
	geom      convCase
	transpose bool // benchmark the transposed convolution whose adjoint geom is
}{
	{name: "res3x3_128to128_16px_reflect", geom: convCase{n: 1, cin: 128, h: 16, w: 16, cout: 128, k: 3, stride: 1, pad: 1, reflect: true}},
	{name: "down3x3s2_32to64_64px", geom: convCase{n: 1, cin: 32, h: 64, w: 64, cout: 64, k: 3, stride: 2, pad: 1}},
	{name: "down3x3s2_64to128_32px", geom: convCase{n: 1, cin: 64, h: 32, w: 32, cout: 128, k: 3, stride: 2, pad: 1}},
	{name: "up3x3s2_128to64_16px", geom: convCase{n: 1, cin: 64, h: 32, w: 32, cout: 128, k: 3, stride: 2, pad: 1}, transpose: true},
	{name: "up3x3s2_64to32_32px", geom: convCase{n: 1, cin: 32, h: 64, w: 64, cout: 64, k: 3, stride: 2, pad: 1}, transpose: true},
	{name: "in7x7_3to32_64px_reflect", geom: convCase{n: 1, cin: 3, h: 64, w: 64, cout: 32, k: 7, stride: 1, pad: 3, reflect: true}},
	{name: "out7x7_32to3_64px_reflect", geom: convCase{n: 1, cin: 32, h: 64, w: 64, cout: 3, k: 7, stride: 1, pad: 3, reflect: true}},
	{name: "disc4x4s2_3to32_64px", geom: convCase{n: 1, cin: 3, h: 64, w: 64, cout: 32, k: 4, stride: 2, pad: 1}},
}

func benchOp(b *testing.B, op gorgonia.Op, flops float64, inputs ...gorgonia.Value) {
	b.Helper()
	if _, err := op.Do(inputs...); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := op.Do(inputs...); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
	if flops > 0 {
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	}
}

// cpuTime returns the CPU time (user and system) the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process CPU time per operation since start. On a shared machine it
// varies less than the wall time, which includes waiting for a core.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
}

func BenchmarkConv(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, bc := range benchConv {
		c := bc.geom
		g, err := newConvGeom(c.n, c.cin, c.h, c.w, c.cout, c.k, c.stride, c.pad, c.reflect)
		if err != nil {
			b.Fatal(err)
		}
		x := randomTensor(rng, tensor.Float32, g.inShape()...)
		w := randomTensor(rng, tensor.Float32, g.weightShape()...)
		y := randomTensor(rng, tensor.Float32, g.outShape()...)
		flops := 2 * float64(g.n*g.cout*g.colRows()*g.colCols())
		// For a transposed convolution the forward pass is the convolution's input gradient
		// and its input gradient is the convolution.
		fwd, bwdData := gorgonia.Op(newConv2dOp("Conv2d", g, false, &convScratch{})), gorgonia.Op(newConvDataOp("Conv2dGradInput", g, false, &convScratch{}))
		fwdIn, bwdIn := []gorgonia.Value{x, w}, []gorgonia.Value{y, w}
		filterIn := []gorgonia.Value{x, y}
		if bc.transpose {
			fwd, bwdData = bwdData, fwd
			fwdIn, bwdIn = bwdIn, fwdIn
		}
		b.Run(bc.name+"/forward", func(b *testing.B) { benchOp(b, fwd, flops, fwdIn...) })
		b.Run(bc.name+"/grad_input", func(b *testing.B) { benchOp(b, bwdData, flops, bwdIn...) })
		b.Run(bc.name+"/grad_weight", func(b *testing.B) { benchOp(b, newConvFilterOp(g, &convScratch{}, sinkUse{}), flops, filterIn...) })
	}
}

func BenchmarkInstanceNorm(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, shape := range [][]int{{1, 32, 64, 64}, {1, 128, 16, 16}} {
		x := randomTensor(rng, tensor.Float32, shape...)
		dy := randomTensor(rng, tensor.Float32, shape...)
		name := fmt.Sprintf("%dx%dx%dx%d", shape[0], shape[1], shape[2], shape[3])
		b.Run(name+"/forward", func(b *testing.B) {
			benchOp(b, newNormOp(tensor.Shape(shape), 1e-5, ReLU(), false), 0, x)
		})
		b.Run(name+"/backward", func(b *testing.B) {
			// Without a forward run the backward op computes the statistics itself.
			benchOp(b, newNormOp(tensor.Shape(shape), 1e-5, ReLU(), true), 0, x, x, dy)
		})
	}
}

func BenchmarkReflectionPad(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, tc := range []struct {
		shape []int
		pad   int
	}{{[]int{1, 3, 64, 64}, 3}, {[]int{1, 128, 16, 16}, 1}} {
		x := randomTensor(rng, tensor.Float32, tc.shape...)
		fwd := newPadOp(tensor.Shape(tc.shape), tc.pad, false)
		dy := randomTensor(rng, tensor.Float32, fwd.padded()...)
		name := fmt.Sprintf("%dx%dx%dx%d_pad%d", tc.shape[0], tc.shape[1], tc.shape[2], tc.shape[3], tc.pad)
		b.Run(name+"/forward", func(b *testing.B) { benchOp(b, fwd, 0, x) })
		b.Run(name+"/backward", func(b *testing.B) { benchOp(b, newPadOp(tensor.Shape(tc.shape), tc.pad, true), 0, dy) })
	}
}

// BenchmarkGeneratorStep runs forward and backward of the cpu preset's ResNet generator (64×64,
// 32 base channels, 6 residual blocks) in float32 through a TapeMachine: about 1.1 GFLOP
// forward and 2.2 GFLOP backward.
func BenchmarkGeneratorStep(b *testing.B) {
	rng := rand.New(rand.NewPCG(4, 4))
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 3, 64, 64), gorgonia.WithValue(randomTensor(rng, tensor.Float32, 1, 3, 64, 64)), gorgonia.WithName("x"))
	var wrt gorgonia.Nodes
	weight := func(name string, shape ...int) *gorgonia.Node {
		v := randomTensor(rng, tensor.Float32, shape...)
		d := v.Data().([]float32)
		for i := range d {
			d[i] *= 0.1
		}
		n := gorgonia.NewTensor(g, tensor.Float32, len(shape), gorgonia.WithShape(shape...), gorgonia.WithValue(v), gorgonia.WithName(name))
		wrt = append(wrt, n)
		return n
	}
	must := func(n *gorgonia.Node, err error) *gorgonia.Node {
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	const ngf = 32
	h := must(Conv2dReflect(x, weight("in", ngf, 3, 7, 7), nil, 1, 3))
	h = must(InstanceNorm(h, 1e-5, ReLU()))
	h = must(Conv2d(h, weight("d1", 2*ngf, ngf, 3, 3), nil, 2, 1))
	h = must(InstanceNorm(h, 1e-5, ReLU()))
	h = must(Conv2d(h, weight("d2", 4*ngf, 2*ngf, 3, 3), nil, 2, 1))
	h = must(InstanceNorm(h, 1e-5, ReLU()))
	for i := 0; i < 6; i++ {
		first := must(Conv2dReflect(h, weight(fmt.Sprintf("r%da", i), 4*ngf, 4*ngf, 3, 3), nil, 1, 1))
		r := must(InstanceNorm(first, 1e-5, ReLU()))
		r = must(Conv2dReflect(r, weight(fmt.Sprintf("r%db", i), 4*ngf, 4*ngf, 3, 3), nil, 1, 1))
		r = must(InstanceNorm(r, 1e-5, Activation{}))
		h = must(ResidualAdd(h, r, first))
	}
	h = must(ConvTranspose2d(h, weight("u1", 4*ngf, 2*ngf, 3, 3), nil, 2, 1, 1))
	h = must(InstanceNorm(h, 1e-5, ReLU()))
	h = must(ConvTranspose2d(h, weight("u2", 2*ngf, ngf, 3, 3), nil, 2, 1, 1))
	h = must(InstanceNorm(h, 1e-5, ReLU()))
	h = must(Conv2dReflect(h, weight("out", 3, ngf, 7, 7), weight("outb", 3), 1, 3))
	h = must(Tanh(h))
	cost := must(MeanSquaredError(h, 0))
	grads, err := gorgonia.Grad(cost, wrt...)
	if err != nil {
		b.Fatal(err)
	}
	sub := g.ExactSubgraphRoots(append(gorgonia.Nodes{cost}, grads...)...)
	vm := gorgonia.NewTapeMachine(sub)
	defer vm.Close()
	plan := PlanBuffers(sub)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		vm.Reset()
		plan.Reset()
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

// BenchmarkIm2col measures, on one goroutine, the data movement around the GEMMs of the
// residual-block convolution (128 channels, 3×3, stride 1, reflection padding) and of a
// stride-2 one, on 16, 32 and 64 px maps: the im2col blocks of the forward pass, the
// transposed ones of the weight gradient, and the col2im sums of the input gradient, in
// the block sizes that the GEMM asks for. It reports the calling thread's CPU time, which a
// busy machine disturbs less than the wall time.
func BenchmarkIm2col(b *testing.B) {
	for _, side := range []int{16, 32, 64} {
		for _, stride := range []int{1, 2} {
			g, err := newConvGeom(1, 128, side, side, 128, 3, stride, 1, stride == 1)
			if err != nil {
				b.Fatal(err)
			}
			xpad := make([]float32, g.cin*g.paddedH()*g.paddedW())
			rows, n := g.colRows(), g.colCols()
			kc := min(256, rows)
			block := make([]float32, 256*32)
			name := fmt.Sprintf("%dpx_stride%d", side, stride)
			b.Run(name+"/forward", func(b *testing.B) {
				threadBench(b, func() {
					for k0 := 0; k0 < rows; k0 += kc {
						for n0 := 0; n0 < n; n0 += 32 {
							im2colBlock(&g, xpad, block, 32, k0, min(kc, rows-k0), n0, min(32, n-n0))
						}
					}
				})
			})
			b.Run(name+"/grad_weight", func(b *testing.B) {
				threadBench(b, func() {
					for k0 := 0; k0 < n; k0 += 256 {
						for n0 := 0; n0 < rows; n0 += 32 {
							im2colBlockTransposed(&g, xpad, block, 32, k0, min(256, n-k0), n0, min(32, rows-n0))
						}
					}
				})
			})
			band := min(n, 512)
			cols := make([]float32, 64*9*band)
			grid := make([]float32, 64*g.paddedH()*g.paddedW())
			b.Run(name+"/grad_input", func(b *testing.B) {
				threadBench(b, func() {
					for half := 0; half < 2; half++ {
						for p0 := 0; p0 < n; p0 += band {
							col2imPadded(&g, cols, band, 64, p0, min(band, n-p0), grid)
						}
					}
				})
			})
		}
	}
}

// threadBench runs fn b.N times on a locked OS thread and reports that thread's CPU time
// per run.
func threadBench(b *testing.B, fn func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPUTime()
	for b.Loop() {
		fn()
	}
	b.ReportMetric(float64(threadCPUTime()-start)/float64(b.N)/1e3, "thread-cpu-us/op")
}

// threadCPUTime returns the CPU time of the calling OS thread so far.
func threadCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rusageThread is Linux's RUSAGE_THREAD, which package syscall does not name.
const rusageThread = 1
