package trainer

import (
	"errors"
	"fmt"
	"time"

	"github.com/gocyclegan/cyclegan/model"
	"github.com/gocyclegan/cyclegan/pipeline"
)

// ErrInvalidConfig is returned by Config.Validate and New for settings that
// break a rule.
var ErrInvalidConfig = errors.New("invalid trainer config")

// BundledDatasetSize is max(|trainA|, |trainB|) of the bundled emoji
// dataset, the default epoch length in pairs.
const BundledDatasetSize = 1483

// Config holds the trainer's settings. Model settings left 0 (or empty) take
// the preset's value.
type Config struct {
	Preset   string // model.PresetCPU or model.PresetReference
	CropSize int    // pixels; 0 keeps the preset's
	NGF      int    // generator channels after the first layer; 0 keeps the preset's
	NDF      int    // discriminator channels after the first layer; 0 keeps the preset's
	Blocks   int    // residual blocks per generator; 0 keeps the preset's

	BatchSize      int
	Seed           int // seeds the weights and the image pools
	GANMode        string
	LambdaA        float64
	LambdaB        float64
	LambdaIdentity float64
	PoolSize       int
	LearningRate   float64
	Epochs         int // epochs at the initial learning rate
	EpochsDecay    int // epochs of linear decay to zero after Epochs

	// DatasetSize is max(|trainA|, |trainB|), the pairs in one epoch. The
	// trainer cannot count the dataset itself, because it only receives
	// pairs.
	DatasetSize int

	Steps           int // stop at this step; 0 runs the whole schedule
	CheckpointEvery int // steps between checkpoints
	LogEvery        int // steps between log lines and metrics.jsonl records
	Retention       pipeline.CheckpointRetention

	// Output is the folder of the runs' files; the trainer writes
	// <Output>/<run>/metrics.jsonl and <Output>/<run>/latest.safetensors.
	Output string
	// Fresh starts the run over at step 0 instead of resuming; see Reset
	// for what it deletes.
	Fresh bool

	// DrainTimeout bounds the work after the context of Run ends: the step
	// in progress, its acks and the last checkpoint. A stage binary copies
	// it from the common drain-timeout setting. 0 means 30s.
	DrainTimeout time.Duration

	// OnStep, if not nil, is called after every applied step from the
	// goroutine of Run, so it must return quickly. The one-process run draws
	// its progress bar from it.
	OnStep func(Progress)
}

// DefaultConfig returns the defaults: the cpu preset's training settings, the
// bundled dataset's size, a checkpoint every 500 steps, a log line every 50,
// the last 3 checkpoints kept and the output folder "runs".
func DefaultConfig() Config {
	// Preset returns an error only for an unknown name.
	p, _ := model.Preset(model.PresetCPU)
	return Config{
		Preset:          model.PresetCPU,
		BatchSize:       p.BatchSize,
		Seed:            1,
		GANMode:         p.GANMode,
		LambdaA:         p.LambdaA,
		LambdaB:         p.LambdaB,
		LambdaIdentity:  p.LambdaIdentity,
		PoolSize:        p.PoolSize,
		LearningRate:    p.LearningRate,
		Epochs:          p.Epochs,
		EpochsDecay:     p.EpochsDecay,
		DatasetSize:     BundledDatasetSize,
		CheckpointEvery: 500,
		LogEvery:        50,
		Retention:       pipeline.CheckpointRetention{KeepLast: 3},
		Output:          "runs",
		DrainTimeout:    30 * time.Second,
	}
}

// Register declares the settings on f, with c's current values as
// defaults. The output flag has the same name and meaning as the
// evaluator's, so a one-process run that registers both configs on one
// FlagSet must register it once.
func (c *Config) Register(f *pipeline.FlagSet) {
	c.register(f, true)
}

// RegisterInProcess is Register without --dataset-size, for a run that counts the
// training images itself.
func (c *Config) RegisterInProcess(f *pipeline.FlagSet) {
	c.register(f, false)
}

func (c *Config) register(f *pipeline.FlagSet, datasetSize bool) {
	f.String(&c.Preset, "preset", "model preset: cpu (64 px crops, ngf=ndf=32, 6 blocks) or reference (256 px crops, ngf=ndf=64, 9 blocks)", pipeline.OneOf(model.PresetNames()...))
	f.Int(&c.CropSize, "crop-size", "pixels", "side of the square training images; 0 uses the preset's", pipeline.AtLeast(0))
	f.Int(&c.NGF, "ngf", "channels", "generator channels after the first layer; 0 uses the preset's", pipeline.AtLeast(0))
	f.Int(&c.NDF, "ndf", "channels", "discriminator channels after the first layer; 0 uses the preset's", pipeline.AtLeast(0))
	f.Int(&c.Blocks, "blocks", "blocks", "residual blocks in each generator; 0 uses the preset's", pipeline.AtLeast(0))
	f.Int(&c.BatchSize, "batch-size", "pairs", "pairs in one training step", pipeline.AtLeast(1))
	f.Int(&c.Seed, "seed", "", "seed of the initial weights and the image pools", pipeline.AtLeast(0))
	f.String(&c.GANMode, "gan-mode", "GAN loss: lsgan (least squares) or vanilla (binary cross-entropy)", pipeline.OneOf(model.GANLeastSquares, model.GANVanilla))
	f.Float(&c.LambdaA, "lambda-a", "", "weight of the A→B→A cycle loss", pipeline.AtLeast(0.0))
	f.Float(&c.LambdaB, "lambda-b", "", "weight of the B→A→B cycle loss", pipeline.AtLeast(0.0))
	f.Float(&c.LambdaIdentity, "lambda-identity", "", "weight of the identity loss, relative to lambda-a and lambda-b", pipeline.AtLeast(0.0))
	f.Int(&c.PoolSize, "pool-size", "images", "generated images kept per domain for the discriminator updates; 0 disables the pool", pipeline.AtLeast(0))
	f.Float(&c.LearningRate, "lr", "", "initial Adam learning rate", nil)
	f.Int(&c.Epochs, "epochs", "epochs", "epochs at the initial learning rate", pipeline.AtLeast(0))
	f.Int(&c.EpochsDecay, "epochs-decay", "epochs", "epochs of linear learning-rate decay after --epochs", pipeline.AtLeast(0))
	if datasetSize {
		f.Int(&c.DatasetSize, "dataset-size", "pairs", "pairs in one epoch: max(|trainA|, |trainB|) of the training set", pipeline.AtLeast(1))
	}
	f.Int(&c.Steps, "steps", "steps", "stop when the run reaches this step; 0 runs epochs + epochs-decay epochs", pipeline.AtLeast(0))
	f.Int(&c.CheckpointEvery, "checkpoint-every", "steps", "steps between checkpoints", pipeline.AtLeast(1))
	f.Int(&c.LogEvery, "log-every", "steps", "steps between progress log lines and metrics.jsonl records", pipeline.AtLeast(1))
	c.Retention.Register(f)
	f.String(&c.Output, "output", "folder of the runs' output files: <output>/<run>/metrics.jsonl, latest.safetensors, samples and index.html", nil)
	f.Bool(&c.Fresh, "fresh", "start the run over at step 0: delete its checkpoints, announcements and reports instead of resuming")
	f.Check(c.Validate)
}

// Validate checks every setting, including the model config they build.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.Steps < 0 {
		bad("--steps %d is negative", c.Steps)
	}
	if c.CheckpointEvery < 1 {
		bad("--checkpoint-every %d must be at least 1", c.CheckpointEvery)
	}
	if c.LogEvery < 1 {
		bad("--log-every %d must be at least 1", c.LogEvery)
	}
	if c.Retention.KeepLast < 1 || c.Retention.KeepEvery < 0 {
		bad("--checkpoint-keep-last %d must be at least 1 and --checkpoint-keep-every %d not negative", c.Retention.KeepLast, c.Retention.KeepEvery)
	}
	if c.Output == "" {
		bad("--output is empty")
	}
	if c.DrainTimeout < 0 {
		bad("drain timeout %s is negative", c.DrainTimeout)
	}
	if c.Seed < 0 {
		bad("--seed %d is negative", c.Seed)
	}
	if _, err := c.ModelConfig(); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrInvalidConfig, err))
	}
	return errors.Join(errs...)
}

// ModelConfig returns the model config of a new run: the preset with c's
// settings applied. The load size is only recorded in checkpoints; it stays
// the preset's unless the crop is larger.
func (c *Config) ModelConfig() (model.Config, error) {
	mc, err := model.Preset(c.Preset)
	if err != nil {
		return model.Config{}, err
	}

	if c.CropSize > 0 {
		mc.CropSize = c.CropSize
		mc.LoadSize = max(mc.LoadSize, c.CropSize)
	}
	if c.NGF > 0 {
		mc.NGF = c.NGF
	}
	if c.NDF > 0 {
		mc.NDF = c.NDF
	}
	if c.Blocks > 0 {
		mc.Blocks = c.Blocks
	}

	mc.BatchSize = c.BatchSize
	mc.GANMode = c.GANMode
	mc.LambdaA = c.LambdaA
	mc.LambdaB = c.LambdaB
	mc.LambdaIdentity = c.LambdaIdentity
	mc.PoolSize = c.PoolSize
	mc.LearningRate = c.LearningRate
	mc.Epochs = c.Epochs
	mc.EpochsDecay = c.EpochsDecay
	mc.DatasetSize = c.DatasetSize

	if err := mc.Validate(); err != nil {
		return model.Config{}, err
	}
	return mc, nil
}

// drainTimeout returns DrainTimeout or its default.
func (c *Config) drainTimeout() time.Duration {
	if c.DrainTimeout <= 0 {
		return 30 * time.Second
	}
	return c.DrainTimeout
}

// totalSteps returns the step at which a run of mc ends: Steps when set,
// otherwise the first step of epoch epochs + epochs_decay, which is
// ⌈(epochs + epochs_decay) × dataset_size / batch_size⌉.
func (c *Config) totalSteps(mc model.Config) int64 {
	if c.Steps > 0 {
		return int64(c.Steps)
	}
	pairs := int64(mc.Epochs+mc.EpochsDecay) * int64(mc.DatasetSize)
	batch := int64(mc.BatchSize)
	return (pairs + batch - 1) / batch
}
