package stack_test

import (
	"bytes"

	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

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

// TestBrowserFreshBoxSaysTheLiteModelStandsInAndWhereToGetMiniLM checks the
// same install in Chromium: the Pipeline's embedder stage says the lite
// model stands in and links to Settings → Models, which names the model in
// use, what it means for search, and offers MiniLM's download.
func TestBrowserFreshBoxSaysTheLiteModelStandsInAndWhereToGetMiniLM(t *testing.T) {
	chromium(t)
	t.Setenv("OWNYOU_ADMIN_PASSWORD", "household secret")
	baseURL, _ := startStackWith(t, func(c *stack.Config) {
		c.Embedder.Model, c.Embedder.ModelDir, c.Embedder.Vocab = "auto", t.TempDir(), ""
		c.Embedder.WordVecPath = os.Getenv("OWNYOU_WORDVEC_PATH")
		c.Gateway.Models.ModelDir = t.TempDir() // nothing downloaded, and no download attempted
	})
	var mbox bytes.Buffer
	if err := testmail.WriteMbox(&mbox, testmail.Messages(5)); err != nil {
		t.Fatal(err)
	}
	upload(t, baseURL, "inbox.mbox", mbox.Bytes())
	b := newBrowser(t, artifactsDir(t))
	b.step("sign in",
		chromedp.Navigate(baseURL),
		chromedp.WaitVisible("#auth-password"),
		chromedp.SendKeys("#auth-password", "household secret"),
		chromedp.Click("#auth-submit"),
		chromedp.WaitVisible("#app"),
	)
	b.step("the pipeline says the lite model stands in",
		chromedp.Navigate(baseURL+"/#/pipeline"),
		b.waitJS(`document.querySelector('.stage[data-stage=embedder]')?.dataset.state === 'up_to_date'`),
		b.waitJS(`[...document.querySelectorAll('.stage[data-stage=embedder] .note')].some(n => n.textContent.includes('lite model stands in') && n.querySelector('a[href="#/settings/models"]'))`),
		b.shot("fresh-01-pipeline"),
		chromedp.Evaluate(`document.querySelector('.stage[data-stage=embedder] .note a[href="#/settings/models"]').click()`, nil),
		b.waitJSAcross(`(document.getElementById('embedding-name')?.textContent || '') === 'the lite model'`),
		b.waitJS(`!!document.querySelector('tr[data-model=all-minilm-l6-v2] button[data-model=all-minilm-l6-v2]') && document.querySelector('tr[data-model=all-minilm-l6-v2] .model-status').dataset.status === 'missing'`),
		b.waitJS(`document.getElementById('embedding-active').textContent.includes('needs MiniLM')`),
		b.shot("fresh-02-settings-models"),
	)
}
