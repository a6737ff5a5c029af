package gateway

import (
	"net/http"
	"testing"

	"github.com/ownyou/home/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// testAdminToken signs the package's handler tests in through OWNYOU_ADMIN_TOKEN.
const testAdminToken = "handler-tests-admin-token"

// asAdmin wraps h so every request carries the admin's bearer token, as a
// script would send it.
func asAdmin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+testAdminToken)
		h.ServeHTTP(w, r)
	})
}
