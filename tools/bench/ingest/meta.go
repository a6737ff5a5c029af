package main

import "github.com/nats-io/nats.go/jetstream"

func jetstreamMeta(name string) jetstream.ObjectMeta { return jetstream.ObjectMeta{Name: name} }
