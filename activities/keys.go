package activities

import (
	"fmt"

	"github.com/sandgate/sandgate/datasets"
)

// keys names every object of one release. Stage and dataset names are this
// package's constants, so a name the layout refuses is a programming error:
// it panics, and the SDK reports the panic as a failed activity.
type keys struct{ l datasets.Layout }

func keysFor(releaseID string) (keys, error) {
	l, err := datasets.NewLayout(releaseID)
	if err != nil {
		return keys{}, badInput("release id: %v", err)
	}
	return keys{l: l}, nil
}

func must(s string, err error) string {
	if err != nil {
		panic(fmt.Sprintf("object key: %v", err))
	}
	return s
}

func (k keys) prefix() string { return k.l.Prefix() }

func (k keys) datasetPart(name string) string { return must(k.l.DatasetPart(name, 0)) }

func (k keys) datasetManifest(name string) string { return must(k.l.DatasetManifest(name)) }

func (k keys) resultPart(stage string, shard, part int) string {
	return must(k.l.ResultPart(stage, shard, part))
}

func (k keys) resultManifest(stage string) string { return must(k.l.ResultManifest(stage)) }

// shardManifest lists one shard's parts until the stage manifest merges them.
func (k keys) shardManifest(stage string, shard int) string {
	return must(k.l.ResultsStagePrefix(stage)) + fmt.Sprintf("_shard-%03d.manifest.json", shard)
}

func (k keys) audit(file string) string { return must(k.l.Audit(file)) }
