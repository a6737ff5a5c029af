// Command models fetches and verifies the model files pinned by the
// manifests in models/:
//
//	go run ./cmd/models fetch [names…]    # fill the cache (all manifests by default; optional ones may fail)
//	go run ./cmd/models verify [names…]   # check sizes and sha256, exit 1 on any problem
//	go run ./cmd/models list              # print manifest names and cache paths
//
// The cache is OWNYOU_MODEL_DIR (default $OWNYOU_DATA_DIR/models, else
// .data/models in the checkout); OWNYOU_MODEL_MIRROR
// names an offline directory searched before the network.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	manifests "github.com/ownyou/home/models"
	"github.com/ownyou/home/pkg/models"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "models:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", models.CacheDir(), "model cache directory ($"+models.EnvModelDir+", else $OWNYOU_DATA_DIR/models)")
	mirror := flag.String("mirror", os.Getenv(models.EnvModelMirror), "offline mirror directory ($"+models.EnvModelMirror+")")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: models [flags] fetch|verify|list [names…]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 {
		flag.Usage()
		return fmt.Errorf("missing command")
	}
	all, err := models.Load(manifests.Manifests)
	if err != nil {
		return err
	}
	sel, err := models.Select(all, flag.Args()[1:]...)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f := &models.Fetcher{Dir: *dir, Mirror: *mirror, Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	switch cmd := flag.Arg(0); cmd {
	case "fetch":
		// Fetching everything (no names) skips optional manifests that
		// cannot be fetched, saying so; a manifest named explicitly must come.
		everything := flag.NArg() == 1
		for _, m := range sel {
			if err := f.Fetch(ctx, m); err != nil {
				if everything && m.Optional && ctx.Err() == nil {
					fmt.Fprintf(os.Stderr, "models: optional %s not fetched (%v); OwnYou runs without it — download it later in Settings → Models\n", m.Name, err)
					continue
				}
				return err
			}
			fmt.Printf("ok %s %s\n", m.Name, m.Version)
		}
	case "verify":
		bad := 0
		for _, m := range sel {
			if err := f.Verify(m); err != nil {
				fmt.Fprintln(os.Stderr, err)
				bad++
				continue
			}
			fmt.Printf("ok %s %s\n", m.Name, m.Version)
		}
		if bad > 0 {
			return fmt.Errorf("%d manifest(s) failed verification", bad)
		}
	case "list":
		for _, m := range sel {
			for _, file := range m.Files {
				fmt.Printf("%s\t%s\n", m.Name, f.Path(file.Path))
				for _, x := range file.ExtractsFor(runtime.GOOS, runtime.GOARCH) {
					fmt.Printf("%s\t%s\n", m.Name, f.Path(x.To))
				}
			}
		}
	default:
		flag.Usage()
		return fmt.Errorf("unknown command %q", cmd)
	}
	return nil
}
