// Package datasets embeds the dataset that the cyclegan command trains on by default.
//
// The bundled set, emoji-google2twitter, pairs Google's Noto Color Emoji (domain A) with
// Twitter's Twemoji (domain B) as 64×64 RGB PNG files in the standard CycleGAN layout
// (trainA, trainB, testA, testB). Its sources and licences are listed in
// emoji-google2twitter/SOURCE.md. Twemoji graphics are CC BY 4.0 and need attribution when
// they, or images derived from them, are redistributed.
package datasets

import (
	"embed"
	"fmt"
	"io/fs"
)

// DefaultName is the folder name of the bundled dataset, used as the default run id.
const DefaultName = "emoji-google2twitter"

//go:embed emoji-google2twitter
var bundled embed.FS

// Bundled returns the bundled dataset as a file system rooted at its top folder, so that
// trainA, trainB, testA and testB are at its root.
func Bundled() (fs.FS, error) {
	sub, err := fs.Sub(bundled, DefaultName)
	if err != nil {
		return nil, fmt.Errorf("open bundled dataset %q: %w", DefaultName, err)
	}
	return sub, nil
}
