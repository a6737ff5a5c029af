//go:build linux && cgo

package embed

// #include <malloc.h>
import "C"

// trimHeap returns freed C heap pages to the OS. ORT frees the parsed model
// protobuf after building a session, but glibc keeps those pages resident.
func trimHeap() { C.malloc_trim(0) }
