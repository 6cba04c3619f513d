// Package ops implements the gorgonia operations that the CycleGAN networks are built from:
// 2-D convolution (with zero or reflection padding), transposed convolution, reflection padding
// and instance normalisation fused with an activation. Gorgonia v0.9 lacks the transposed
// convolution and reflection padding, computes GroupNorm wrongly once H·W ≥ 1024, and composing
// these layers from its primitives costs thousands of graph nodes. Each op here is one node
// forward and one node per differentiable input backward. The residual sum (ResidualAdd), tanh,
// the activations without a norm (Activate) and the mean squared, absolute and cross-entropy
// losses are ops here too, because gorgonia's own ops allocate a new output tensor on every run.
//
// All tensors are NCHW and float32 or float64. Shapes are checked when a node is built, so a
// mismatch returns an error wrapping ErrInvalidShape (or ErrInvalidArgument, ErrInvalidDtype)
// instead of failing inside a run.
//
// # Memory reuse
//
// Each op owns its output tensor and reuses it on every run of the machine, so the value an
// op returns is overwritten by the next run of the same graph: copy it out (gorgonia.Read
// copies) to keep it. Under a BufferPlan (PlanBuffers) the ops of a graph also share output
// memory: an output that only ops of this package read goes back to a pool once they have
// run, so a training step holds the forward values that the backward pass needs but few
// backward ones at a time. A GradSink lets the weight-gradient ops of a weight's several uses
// add into one tensor instead of gorgonia summing one tensor per use. The convolutions of one graph share one set of scratch buffers (im2col
// blocks, packed weights, padded inputs), which is safe because a machine executes a graph's
// ops one at a time. For the same reason one graph must not be run by two machines at once,
// which gorgonia does not support anyway; separate graphs may run concurrently.
//
// # Speed
//
// Convolutions are GEMMs from package model/gemm on im2col blocks built on the fly, so the
// whole im2col matrix never exists. Stride-1 convolutions with at most 8 output channels use
// the kn2row form (one GEMM with the kernel taps as rows, then shifted sums) for the output
// and the weight gradient, and input gradients of stride-1 convolutions with at most 32
// output channels are convolutions with the flipped kernel. Each op splits its work across
// GOMAXPROCS goroutines, each running single-threaded GEMMs on its own part of the output.
// In a graph with a BufferPlan those goroutines are helpers that spin briefly between ops,
// because a VM's scheduler can take tens of microseconds to start a new one (except in the
// OpenBLAS build, where the helpers made the step slower).
//
// # Gradients
//
// Every op implements gorgonia.SDOp, so gorgonia.Grad differentiates through it; the backward
// ops (gradient of the input, of the weight, of the bias) are ops of their own. Gorgonia adds a
// gradient node for every input of an op it differentiates, also for inputs that no output
// needs, such as the input image. A machine built from the whole graph runs those nodes too;
// building it from g.ExactSubgraphRoots(outputs...) leaves them out.
package ops
