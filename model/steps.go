package model

import (
	"fmt"

	"gorgonia.org/gorgonia"

	"github.com/gocyclegan/cyclegan/model/ops"
)

// readout is a value copied out of a graph during a run. Ops reuse their
// output memory, so values are read through gorgonia.Read, which copies.
type readout struct {
	value gorgonia.Value
}

func (r *readout) floats() []float32 { return r.value.Data().([]float32) }

func (r *readout) scalar() float64 {
	switch v := r.value.Data().(type) {
	case float32:
		return float64(v)
	case []float32:
		return float64(v[0])
	}
	return 0
}

// compiledGraph is a graph with its tape machine, built once and run once
// per training step or translation.
type compiledGraph struct {
	vm      gorgonia.VM
	buffers *ops.BufferPlan
}

// compile builds a tape machine over the part of b's graph that the read
// nodes need, so gradient nodes of inputs that nothing reads (gorgonia adds
// one for every input of a differentiated op) are not run. The ops of that
// part share their output memory (ops.PlanBuffers).
func compile(b *graphBuilder, reads gorgonia.Nodes) *compiledGraph {
	sub := b.g.ExactSubgraphRoots(reads...)
	return &compiledGraph{vm: gorgonia.NewTapeMachine(sub), buffers: ops.PlanBuffers(sub)}
}

// run executes the graph once. A panic inside gorgonia or an op becomes
// an error, so it does not cross the package boundary.
func (c *compiledGraph) run() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("run graph: panic: %v", r)
		}
	}()
	c.vm.Reset()
	c.buffers.Reset()
	if err := c.vm.RunAll(); err != nil {
		return fmt.Errorf("run graph: %w", err)
	}
	return nil
}

func (c *compiledGraph) close() error { return c.vm.Close() }

// reader collects gorgonia.Read nodes and their destinations.
type reader struct {
	nodes gorgonia.Nodes
}

func (r *reader) read(n *gorgonia.Node) *readout {
	out := &readout{}
	r.nodes = append(r.nodes, gorgonia.Read(n, &out.value))
	return out
}

// generatorStep is the graph of the generator update: all six generator
// passes, the adversarial, cycle and identity losses, and the gradient of
// their sum with respect to the generators' weights only. The
// discriminators' weights are constants of this graph.
type generatorStep struct {
	graph        *compiledGraph
	realA, realB []float32 // input tensors, filled before each run
	losses       map[string]*readout
	fakeA, fakeB *readout
	grads        *gradientSet // of generatorNames, filled by each run
}

func buildGeneratorStep(cfg Config, weights *weightSet, generatorNames []string) (*generatorStep, error) {
	b := newGraphBuilder(weights)
	shape := []int{cfg.BatchSize, 3, cfg.CropSize, cfg.CropSize}
	s := &generatorStep{losses: map[string]*readout{}}
	var realA, realB *gorgonia.Node
	realA, s.realA = b.input("real_A", shape...)
	realB, s.realB = b.input("real_B", shape...)

	wrap := func(what string, err error) error { return fmt.Errorf("build generator step: %s: %w", what, err) }
	var err error
	if s.grads, err = newGradientSet(weights, generatorNames); err != nil {
		return nil, wrap("gradients", err)
	}
	b.grads = s.grads
	fakeB, err := b.network(cfg, netGA, realA)
	if err != nil {
		return nil, wrap("fake_B", err)
	}
	recA, err := b.network(cfg, netGB, fakeB)
	if err != nil {
		return nil, wrap("rec_A", err)
	}
	fakeA, err := b.network(cfg, netGB, realB)
	if err != nil {
		return nil, wrap("fake_A", err)
	}
	recB, err := b.network(cfg, netGA, fakeA)
	if err != nil {
		return nil, wrap("rec_B", err)
	}
	predFakeB, err := b.network(cfg, netDA, fakeB)
	if err != nil {
		return nil, wrap("D_A(fake_B)", err)
	}
	predFakeA, err := b.network(cfg, netDB, fakeA)
	if err != nil {
		return nil, wrap("D_B(fake_A)", err)
	}

	terms := map[string]*gorgonia.Node{}
	if terms[LossGA], err = ganLoss(cfg.GANMode, predFakeB, true); err != nil {
		return nil, wrap(LossGA, err)
	}
	if terms[LossGB], err = ganLoss(cfg.GANMode, predFakeA, true); err != nil {
		return nil, wrap(LossGB, err)
	}
	if terms[LossCycleA], err = weightedL1(recA, realA, cfg.LambdaA); err != nil {
		return nil, wrap(LossCycleA, err)
	}
	if terms[LossCycleB], err = weightedL1(recB, realB, cfg.LambdaB); err != nil {
		return nil, wrap(LossCycleB, err)
	}
	// The reference skips the identity passes when their weight is 0.
	if cfg.LambdaIdentity > 0 {
		idtA, err := b.network(cfg, netGA, realB)
		if err != nil {
			return nil, wrap("idt_A", err)
		}
		idtB, err := b.network(cfg, netGB, realA)
		if err != nil {
			return nil, wrap("idt_B", err)
		}
		if terms[LossIdtA], err = weightedL1(idtA, realB, cfg.LambdaB*cfg.LambdaIdentity); err != nil {
			return nil, wrap(LossIdtA, err)
		}
		if terms[LossIdtB], err = weightedL1(idtB, realA, cfg.LambdaA*cfg.LambdaIdentity); err != nil {
			return nil, wrap(LossIdtB, err)
		}
	}

	var parts gorgonia.Nodes
	var r reader
	for _, name := range []string{LossGA, LossGB, LossCycleA, LossCycleB, LossIdtA, LossIdtB} {
		if n, ok := terms[name]; ok {
			parts = append(parts, n)
			s.losses[name] = r.read(n)
		}
	}
	total, err := sum(parts...)
	if err != nil {
		return nil, wrap("loss_G", err)
	}
	grads, err := b.gradients(total)
	if err != nil {
		return nil, wrap("gradients", err)
	}
	s.fakeA = r.read(fakeA)
	s.fakeB = r.read(fakeB)
	s.graph = compile(b, append(r.nodes, grads...))
	return s, nil
}

// discriminatorStep is the graph of the discriminator update. D_A judges
// real and pooled fake B images, D_B real and pooled fake A images, and each
// loss is halved. The graph takes the gradient of their sum with respect
// to the discriminators' weights. The pooled fakes are inputs, so nothing
// flows back into the generators.
type discriminatorStep struct {
	graph            *compiledGraph
	realA, realB     []float32
	pooledA, pooledB []float32
	lossDA, lossDB   *readout
	grads            *gradientSet // of discriminatorNames, filled by each run
}

func buildDiscriminatorStep(cfg Config, weights *weightSet, discriminatorNames []string) (*discriminatorStep, error) {
	b := newGraphBuilder(weights)
	shape := []int{cfg.BatchSize, 3, cfg.CropSize, cfg.CropSize}
	s := &discriminatorStep{}
	var realA, realB, pooledA, pooledB *gorgonia.Node
	realA, s.realA = b.input("real_A", shape...)
	realB, s.realB = b.input("real_B", shape...)
	pooledA, s.pooledA = b.input("pooled_fake_A", shape...)
	pooledB, s.pooledB = b.input("pooled_fake_B", shape...)

	wrap := func(what string, err error) error { return fmt.Errorf("build discriminator step: %s: %w", what, err) }
	var err error
	if s.grads, err = newGradientSet(weights, discriminatorNames); err != nil {
		return nil, wrap("gradients", err)
	}
	b.grads = s.grads
	lossDA, err := b.discriminatorLoss(cfg, netDA, realB, pooledB)
	if err != nil {
		return nil, wrap(LossDA, err)
	}
	lossDB, err := b.discriminatorLoss(cfg, netDB, realA, pooledA)
	if err != nil {
		return nil, wrap(LossDB, err)
	}
	total, err := gorgonia.Add(lossDA, lossDB)
	if err != nil {
		return nil, wrap("loss_D", err)
	}
	grads, err := b.gradients(total)
	if err != nil {
		return nil, wrap("gradients", err)
	}
	var r reader
	s.lossDA = r.read(lossDA)
	s.lossDB = r.read(lossDB)
	s.graph = compile(b, append(r.nodes, grads...))
	return s, nil
}

// discriminatorLoss returns 0.5·(GAN(D(real), 1) + GAN(D(fake), 0)).
func (b *graphBuilder) discriminatorLoss(cfg Config, network string, real, fake *gorgonia.Node) (*gorgonia.Node, error) {
	predReal, err := b.network(cfg, network, real)
	if err != nil {
		return nil, err
	}
	predFake, err := b.network(cfg, network, fake)
	if err != nil {
		return nil, err
	}
	lossReal, err := ganLoss(cfg.GANMode, predReal, true)
	if err != nil {
		return nil, err
	}
	lossFake, err := ganLoss(cfg.GANMode, predFake, false)
	if err != nil {
		return nil, err
	}
	total, err := gorgonia.Add(lossReal, lossFake)
	if err != nil {
		return nil, err
	}
	return scale(total, 0.5)
}

// weightedL1 returns λ·mean|a − b|.
func weightedL1(a, b *gorgonia.Node, lambda float64) (*gorgonia.Node, error) {
	loss, err := l1(a, b)
	if err != nil {
		return nil, err
	}
	return scale(loss, lambda)
}
