package model

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// GAN loss modes.
const (
	// GANLeastSquares is the LSGAN loss: mean squared error to 1 (real)
	// or 0 (fake).
	GANLeastSquares = "lsgan"
	// GANVanilla is binary cross-entropy on the discriminator's logits.
	GANVanilla = "vanilla"
)

// Preset names.
const (
	PresetCPU       = "cpu"
	PresetReference = "reference"
)

// MinCropSize is the smallest training crop: the discriminator's three
// stride-2 4×4 convolutions take a side S to ⌊S/8⌋, and its two stride-1
// 4×4 convolutions with padding 1 remove one pixel each, so ⌊S/8⌋ − 2 ≥ 1
// needs S ≥ 24.
const MinCropSize = 24

// MinImageSize is the smallest side the generator translates: after two
// stride-2 convolutions the map must be at least 2 pixels wide for the
// residual blocks' reflection padding of 1.
const MinImageSize = 8

// Upper bounds that keep a crafted checkpoint's config from building an
// enormous graph; they are far above any preset.
const (
	maxImageSide = 2048
	maxChannels  = 1024
	maxBlocks    = 64
	maxBatchSize = 256
	maxPoolSize  = 10000
)

// Config is everything that determines the networks, the losses and the
// optimiser. It is stored in every checkpoint as JSON.
type Config struct {
	Preset    string `json:"preset"`     // name of the preset it started from, informational
	LoadSize  int    `json:"load_size"`  // pixels; images are resized to this side before cropping
	CropSize  int    `json:"crop_size"`  // pixels; side of the square training images
	NGF       int    `json:"ngf"`        // generator channels after the first layer
	NDF       int    `json:"ndf"`        // discriminator channels after the first layer
	Blocks    int    `json:"blocks"`     // residual blocks in each generator
	BatchSize int    `json:"batch_size"` // images per domain in one step

	GANMode        string  `json:"gan_mode"`        // GANLeastSquares or GANVanilla
	LambdaA        float64 `json:"lambda_A"`        // weight of the A→B→A cycle loss
	LambdaB        float64 `json:"lambda_B"`        // weight of the B→A→B cycle loss
	LambdaIdentity float64 `json:"lambda_identity"` // identity loss weight, relative to LambdaA and LambdaB
	PoolSize       int     `json:"pool_size"`       // images kept per domain by the image pool; 0 disables it

	LearningRate float64 `json:"lr"`       // initial Adam step size
	Beta1        float64 `json:"beta1"`    // Adam first-moment decay
	Beta2        float64 `json:"beta2"`    // Adam second-moment decay
	AdamEpsilon  float64 `json:"adam_eps"` // added to Adam's denominator
	Epochs       int     `json:"epochs"`   // epochs at the initial learning rate
	EpochsDecay  int     `json:"epochs_decay"`

	// DatasetSize is max(|A|, |B|), the number of images in one epoch. The
	// presets leave it 0, so the caller must set it from the data.
	DatasetSize int `json:"dataset_size"`
}

// Preset returns the named preset: PresetCPU (64 px crops from 72 px,
// ngf = ndf = 32, 6 residual blocks) or PresetReference (256 from 286,
// ngf = ndf = 64, 9 blocks). Both use batch 1, LSGAN, λ_A = λ_B = 10,
// λ_identity = 0.5, a pool of 50, Adam with learning rate 2e-4, β1 = 0.5,
// β2 = 0.999, and 100 + 100 epochs. DatasetSize is left 0.
func Preset(name string) (Config, error) {
	cfg := Config{
		Preset:         name,
		BatchSize:      1,
		GANMode:        GANLeastSquares,
		LambdaA:        10,
		LambdaB:        10,
		LambdaIdentity: 0.5,
		PoolSize:       50,
		LearningRate:   2e-4,
		Beta1:          0.5,
		Beta2:          0.999,
		AdamEpsilon:    1e-8,
		Epochs:         100,
		EpochsDecay:    100,
	}
	switch name {
	case PresetCPU:
		cfg.LoadSize, cfg.CropSize, cfg.NGF, cfg.NDF, cfg.Blocks = 72, 64, 32, 32, 6
	case PresetReference:
		cfg.LoadSize, cfg.CropSize, cfg.NGF, cfg.NDF, cfg.Blocks = 286, 256, 64, 64, 9
	default:
		return Config{}, fmt.Errorf("%w: unknown preset %q (known: %s)", ErrInvalidConfig, name, strings.Join(PresetNames(), ", "))
	}
	return cfg, nil
}

// PresetNames returns the names Preset accepts, the default first.
func PresetNames() []string { return []string{PresetCPU, PresetReference} }

// Validate checks every field and returns an error wrapping ErrInvalidConfig
// that names the first invalid field and its rule.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.CropSize%4 != 0 || c.CropSize < MinCropSize:
		return bad("crop_size %d must be a multiple of 4 and at least %d (the discriminator's 4×4 convolutions shrink a side S to ⌊S/8⌋−2 pixels)", c.CropSize, MinCropSize)
	case c.CropSize > maxImageSide:
		return bad("crop_size %d exceeds the maximum of %d", c.CropSize, maxImageSide)
	case c.LoadSize < c.CropSize || c.LoadSize > maxImageSide:
		return bad("load_size %d must be between crop_size %d and %d", c.LoadSize, c.CropSize, maxImageSide)
	case c.NGF < 1 || c.NGF > maxChannels:
		return bad("ngf %d must be between 1 and %d", c.NGF, maxChannels)
	case c.NDF < 1 || c.NDF > maxChannels:
		return bad("ndf %d must be between 1 and %d", c.NDF, maxChannels)
	case c.Blocks < 0 || c.Blocks > maxBlocks:
		return bad("blocks %d must be between 0 and %d", c.Blocks, maxBlocks)
	case c.BatchSize < 1 || c.BatchSize > maxBatchSize:
		return bad("batch_size %d must be between 1 and %d", c.BatchSize, maxBatchSize)
	case !slices.Contains([]string{GANLeastSquares, GANVanilla}, c.GANMode):
		return bad("gan_mode %q must be %q or %q", c.GANMode, GANLeastSquares, GANVanilla)
	case !finiteAtLeast(c.LambdaA, 0) || !finiteAtLeast(c.LambdaB, 0) || !finiteAtLeast(c.LambdaIdentity, 0):
		return bad("lambda_A %v, lambda_B %v and lambda_identity %v must be finite and not negative", c.LambdaA, c.LambdaB, c.LambdaIdentity)
	case c.PoolSize < 0 || c.PoolSize > maxPoolSize:
		return bad("pool_size %d must be between 0 and %d", c.PoolSize, maxPoolSize)
	case !finiteAtLeast(c.LearningRate, 0) || c.LearningRate == 0:
		return bad("lr %v must be finite and positive", c.LearningRate)
	case !finiteAtLeast(c.Beta1, 0) || c.Beta1 >= 1 || !finiteAtLeast(c.Beta2, 0) || c.Beta2 >= 1:
		return bad("beta1 %v and beta2 %v must be in [0, 1)", c.Beta1, c.Beta2)
	case !finiteAtLeast(c.AdamEpsilon, 0) || c.AdamEpsilon == 0:
		return bad("adam_eps %v must be finite and positive", c.AdamEpsilon)
	case c.Epochs < 0 || c.EpochsDecay < 0 || c.Epochs+c.EpochsDecay < 1:
		return bad("epochs %d and epochs_decay %d must not be negative and must add up to at least 1", c.Epochs, c.EpochsDecay)
	case c.DatasetSize < 1:
		return bad("dataset_size %d must be at least 1: set it to max(|A|, |B|) of the training set", c.DatasetSize)
	}
	return nil
}

func finiteAtLeast(v, low float64) bool {
	return !math.IsNaN(v) && !math.IsInf(v, 0) && v >= low
}

// imageLen returns the number of float32 values in one training image.
func (c Config) imageLen() int { return 3 * c.CropSize * c.CropSize }
