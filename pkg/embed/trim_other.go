//go:build !linux || !cgo

package embed

func trimHeap() {}
