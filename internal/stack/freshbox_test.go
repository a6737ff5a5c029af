package stack_test

import (
	"bytes"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ownyou/home/internal/stack"
	"github.com/ownyou/home/internal/testmail"
	"github.com/ownyou/home/pkg/testkit"
)

// TestFreshBoxWithoutMiniLMReachesCardsOnTheLiteModel is a new install that
// could not download MiniLM: the embedder runs the lite model (word
// vectors), every stage reaches 100 %, the Pipeline says the lite model
// stands in and how to get MiniLM, semantic search answers on the lite
// model's vectors, and the agents make their cards.
func TestFreshBoxWithoutMiniLMReachesCardsOnTheLiteModel(t *testing.T) {
	if os.Getenv("OWNYOU_WORDVEC_PATH") == "" {
		t.Fatal("OWNYOU_WORDVEC_PATH unset: make test installs the word vectors")
	}
	baseURL, _ := startStackWith(t, func(c *stack.Config) {
		c.Embedder.Model, c.Embedder.ModelDir, c.Embedder.Vocab = "auto", t.TempDir(), "" // nothing downloaded
		c.Embedder.WordVecPath = os.Getenv("OWNYOU_WORDVEC_PATH")
		c.Classifier.UseEmbedder = true
	})
	msgs := append(testmail.Messages(20), testmail.Bookings(time.Now())...)
	var mbox bytes.Buffer
	if err := testmail.WriteMbox(&mbox, msgs); err != nil {
		t.Fatal(err)
	}
	upload(t, baseURL, "inbox.mbox", mbox.Bytes())
	n := int64(len(msgs))

	var p struct {
		Stages []struct {
			Name      string `json:"name"`
			Processed int64  `json:"processed"`
			Total     int64  `json:"total"`
			State     string `json:"state"`
			Detail    string `json:"detail"`
			Notes     []struct {
				Text   string `json:"text"`
				Action *struct {
					Href string `json:"href"`
				} `json:"action"`
			} `json:"notes"`
		} `json:"stages"`
	}
	testkit.Eventually(t, 2*time.Minute, func() bool {
		getJSON(t, baseURL+"/api/v1/pipeline", &p)
		for _, s := range p.Stages {
			if s.Processed != n || s.State != "up_to_date" {
				return false
			}
		}
		return len(p.Stages) == 4
	}, "the pipeline did not reach 100%% on the lite model: %+v", p)
	var liteNote bool
	for _, s := range p.Stages {
		if s.Name != "embedder" {
			continue
		}
		for _, note := range s.Notes {
			liteNote = liteNote || strings.Contains(note.Text, "lite model stands in") && note.Action != nil && note.Action.Href == "#/settings/models"
		}
	}
	if !liteNote {
		t.Errorf("the embedder stage does not say the lite model stands in, with a way to MiniLM: %+v", p.Stages[1])
	}

	var res struct {
		Model    string   `json:"model"`
		Warnings []string `json:"warnings"`
		Hits     []struct {
			Subject string `json:"subject"`
		} `json:"hits"`
	}
	getJSON(t, baseURL+"/api/v1/search?mode=semantic&q="+url.QueryEscape("restaurant table reservation"), &res)
	if !strings.HasPrefix(res.Model, "wink-embeddings") || len(res.Hits) == 0 || len(res.Warnings) != 0 {
		t.Errorf("semantic search on a fresh box: model %q, %d hits, warnings %v", res.Model, len(res.Hits), res.Warnings)
	}
	waitForCards(t, baseURL)
}
