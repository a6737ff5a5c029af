package gateway

import (
	"testing"

	"github.com/ownyou/home/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }
