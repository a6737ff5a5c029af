// Package models embeds the project's model manifests (the *.json files in
// this directory; format in README.md) so programs can verify and locate
// model files without a source checkout. Use pkg/models to read them.
package models

import "embed"

// Manifests holds every *.json manifest of this directory; read-only.
//
//go:embed *.json
var Manifests embed.FS
