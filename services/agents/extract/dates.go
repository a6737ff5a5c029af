package extract

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DateMatch is one date (optionally with a time of day) found in text.
type DateMatch struct {
	Start, End int       // byte offsets of the match in the text
	Text       string    // the matched text
	Time       time.Time // the date at 00:00, or with the time of day when HasTime
	HasTime    bool      // a time of day was stated next to the date
	HasYear    bool      // the year was stated, not inferred
	Relative   bool      // the date was relative ("tomorrow", "next Friday")
}

const monthRe = `(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?`
const weekdayRe = `(mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|fri(?:day)?|sat(?:urday)?|sun(?:day)?)\.?`

var (
	isoDateRe  = regexp.MustCompile(`\b(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}))?\b`)
	numDateRe  = regexp.MustCompile(`\b(\d{1,2})([/.])(\d{1,2})[/.](\d{4}|\d{2})\b`)
	dmyRe      = regexp.MustCompile(`(?i)\b(?:` + weekdayRe + `,?\s+)?(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?` + monthRe + `(?:,?\s+(\d{4}))?\b`)
	mdyRe      = regexp.MustCompile(`(?i)\b(?:` + weekdayRe + `,?\s+)?` + monthRe + `\s+(\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(\d{4})\b)?`)
	dmyRangeRe = regexp.MustCompile(`(?i)\b(\d{1,2})(?:st|nd|rd|th)?\s?(?:-|–|—|to|until)\s?(\d{1,2})(?:st|nd|rd|th)?\s+` + monthRe + `(?:,?\s+(\d{4}))?\b`)
	mdyRangeRe = regexp.MustCompile(`(?i)\b` + monthRe + `\s+(\d{1,2})(?:st|nd|rd|th)?\s?(?:-|–|—|to|until)\s?(\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(\d{4})\b)?`)
	relDayRe   = regexp.MustCompile(`(?i)\b(today|tonight|tomorrow|yesterday)\b`)
	relWdRe    = regexp.MustCompile(`(?i)\b(next|this|on|coming)\s+` + weekdayRe + `\b`)
	relInRe    = regexp.MustCompile(`(?i)\bin\s+(\d{1,3}|one|two|three|four|five|six|seven)\s+(days?|weeks?)\b`)
	// times: 14:30, 2:30 pm, 2pm, 19h30, noon
	timeRe = regexp.MustCompile(`(?i)\b(\d{1,2})(?::|h)(\d{2})(?:\s*([ap])\.?\s?m\b\.?)?|\b(\d{1,2})\s*([ap])\.?\s?m\b\.?|\b(noon|midday|midnight)\b`)
	// what may sit between a date and its time
	dateTimeGlue = regexp.MustCompile(`(?i)^(?:\s*(?:,|at|um|à|om|alle|@|from|-|–|·|\||\bT\b|starting|doors|departs?|arrives?)?\s*){1,3}$`)
)

var monthByPrefix = map[string]time.Month{
	"jan": time.January, "feb": time.February, "mar": time.March, "apr": time.April,
	"may": time.May, "jun": time.June, "jul": time.July, "aug": time.August,
	"sep": time.September, "oct": time.October, "nov": time.November, "dec": time.December,
}

var weekdayByPrefix = map[string]time.Weekday{
	"mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday,
	"fri": time.Friday, "sat": time.Saturday, "sun": time.Sunday,
}

var smallNumbers = map[string]int{"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}

func parseMonth(s string) (time.Month, bool) {
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	if len(s) < 3 {
		return 0, false
	}
	m, ok := monthByPrefix[s[:3]]
	return m, ok
}

func parseWeekday(s string) (time.Weekday, bool) {
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	if len(s) < 3 {
		return 0, false
	}
	w, ok := weekdayByPrefix[s[:3]]
	return w, ok
}

// TimeMatch is a time of day found in text.
type TimeMatch struct {
	Start, End   int
	Text         string
	Hour, Minute int
}

// Times returns every time of day stated in text, in order.
func Times(text string) []TimeMatch {
	var out []TimeMatch
	for _, m := range timeRe.FindAllStringSubmatchIndex(text, -1) {
		g := func(i int) string {
			if m[2*i] < 0 {
				return ""
			}
			return text[m[2*i]:m[2*i+1]]
		}
		var h, min int
		switch {
		case g(1) != "":
			h, _ = strconv.Atoi(g(1))
			min, _ = strconv.Atoi(g(2))
			if ap := strings.ToLower(g(3)); ap != "" {
				if h < 1 || h > 12 {
					continue
				}
				h = to24(h, ap)
			}
			// "10.30" is matched only with ':' or 'h'; reject 25:99 and scores like 3:2
		case g(4) != "":
			h, _ = strconv.Atoi(g(4))
			if h < 1 || h > 12 {
				continue
			}
			h = to24(h, strings.ToLower(g(5)))
		case g(6) != "":
			if strings.EqualFold(g(6), "midnight") {
				h = 0
			} else {
				h = 12
			}
		}
		if h > 23 || min > 59 {
			continue
		}
		// a colon-number preceded by a digit or followed by ':' is a duration or a clock with seconds: keep the clock
		out = append(out, TimeMatch{Start: m[0], End: m[1], Text: text[m[0]:m[1]], Hour: h, Minute: min})
	}
	return out
}

func to24(h int, ap string) int {
	if ap == "a" {
		if h == 12 {
			return 0
		}
		return h
	}
	if h == 12 {
		return 12
	}
	return h + 12
}

// Dates returns every date stated in text, in order of appearance, without
// overlaps. ref is the mail's own date: it anchors relative dates ("tomorrow")
// and the year of dates written without one (the year is chosen so the date
// falls between 60 days before and about 10 months after ref). Numeric dates
// with '.' are read day-first, with '/' month-first unless that is impossible.
// A time of day written right after a date is folded into it.
func Dates(text string, ref time.Time) []DateMatch {
	loc := ref.Location()
	var cands []DateMatch
	add := func(start, end int, t time.Time, hasYear, rel bool) {
		cands = append(cands, DateMatch{Start: start, End: end, Text: text[start:end], Time: t, HasYear: hasYear, Relative: rel})
	}
	sub := func(m []int, i int) string {
		if m[2*i] < 0 {
			return ""
		}
		return text[m[2*i]:m[2*i+1]]
	}
	for _, m := range isoDateRe.FindAllStringSubmatchIndex(text, -1) {
		y, _ := strconv.Atoi(sub(m, 1))
		mo, _ := strconv.Atoi(sub(m, 2))
		d, _ := strconv.Atoi(sub(m, 3))
		t, ok := mkDate(y, time.Month(mo), d, loc)
		if !ok {
			continue
		}
		dm := DateMatch{Start: m[0], End: m[1], Text: text[m[0]:m[1]], Time: t, HasYear: true}
		if sub(m, 4) != "" {
			h, _ := strconv.Atoi(sub(m, 4))
			mi, _ := strconv.Atoi(sub(m, 5))
			if h < 24 && mi < 60 {
				dm.Time = t.Add(time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute)
				dm.HasTime = true
			}
		}
		cands = append(cands, dm)
	}
	for _, m := range numDateRe.FindAllStringSubmatchIndex(text, -1) {
		a, _ := strconv.Atoi(sub(m, 1))
		b, _ := strconv.Atoi(sub(m, 3))
		y, _ := strconv.Atoi(sub(m, 4))
		if y < 100 {
			y += 2000
		}
		day, mon := b, a // month-first for '/'
		if sub(m, 2) == "." || a > 12 {
			day, mon = a, b
		}
		t, ok := mkDate(y, time.Month(mon), day, loc)
		if !ok {
			continue
		}
		add(m[0], m[1], t, true, false)
	}
	named := func(re *regexp.Regexp, dayIdx, monIdx int) {
		for _, m := range re.FindAllStringSubmatchIndex(text, -1) {
			d, _ := strconv.Atoi(sub(m, dayIdx))
			mon, ok := parseMonth(sub(m, monIdx))
			if !ok {
				continue
			}
			wdS := sub(m, 1)
			if ys := sub(m, 4); ys != "" {
				y, _ := strconv.Atoi(ys)
				t, ok := mkDate(y, mon, d, loc)
				if !ok {
					continue
				}
				add(m[0], m[1], t, true, false)
				continue
			}
			t, ok := inferYear(mon, d, ref, wdS)
			if !ok {
				continue
			}
			add(m[0], m[1], t, false, false)
		}
	}
	named(dmyRe, 2, 3)
	named(mdyRe, 3, 2)
	// "11–13 Dec 2026", "Dec 11-13, 2026": two dates sharing month and year
	ranged := func(re *regexp.Regexp, d1, d2, mo, yr int) {
		for _, m := range re.FindAllStringSubmatchIndex(text, -1) {
			mon, ok := parseMonth(sub(m, mo))
			if !ok {
				continue
			}
			a, _ := strconv.Atoi(sub(m, d1))
			b, _ := strconv.Atoi(sub(m, d2))
			var t1, t2 time.Time
			var ok1, ok2 bool
			hasYear := sub(m, yr) != ""
			if hasYear {
				y, _ := strconv.Atoi(sub(m, yr))
				t1, ok1 = mkDate(y, mon, a, loc)
				t2, ok2 = mkDate(y, mon, b, loc)
			} else {
				t1, ok1 = inferYear(mon, a, ref, "")
				if ok1 {
					t2, ok2 = mkDate(t1.Year(), mon, b, loc)
				}
			}
			if !ok1 || !ok2 || !t2.After(t1) {
				continue
			}
			// the first date spans only its day digits so the second stays a separate match
			mid := m[2*d1+1]
			add(m[0], mid, t1, hasYear, false)
			add(m[2*d2], m[1], t2, hasYear, false)
		}
	}
	ranged(dmyRangeRe, 1, 2, 3, 4)
	ranged(mdyRangeRe, 2, 3, 1, 4)
	day0 := time.Date(ref.Year(), ref.Month(), ref.Day(), 0, 0, 0, 0, loc)
	for _, m := range relDayRe.FindAllStringSubmatchIndex(text, -1) {
		off := map[string]int{"today": 0, "tonight": 0, "tomorrow": 1, "yesterday": -1}[strings.ToLower(sub(m, 1))]
		add(m[0], m[1], day0.AddDate(0, 0, off), false, true)
	}
	for _, m := range relWdRe.FindAllStringSubmatchIndex(text, -1) {
		wd, ok := parseWeekday(sub(m, 2))
		if !ok {
			continue
		}
		ahead := (int(wd) - int(day0.Weekday()) + 7) % 7
		if strings.EqualFold(sub(m, 1), "next") && ahead == 0 {
			ahead = 7
		}
		add(m[0], m[1], day0.AddDate(0, 0, ahead), false, true)
	}
	for _, m := range relInRe.FindAllStringSubmatchIndex(text, -1) {
		n, err := strconv.Atoi(sub(m, 1))
		if err != nil {
			n = smallNumbers[strings.ToLower(sub(m, 1))]
		}
		if strings.HasPrefix(strings.ToLower(sub(m, 2)), "week") {
			n *= 7
		}
		add(m[0], m[1], day0.AddDate(0, 0, n), false, true)
	}
	out := dedupeSpans(cands)
	attachTimes(text, out)
	return out
}

// dedupeSpans keeps the longest of overlapping matches, ordered by start.
func dedupeSpans(c []DateMatch) []DateMatch {
	sort.SliceStable(c, func(i, j int) bool {
		if c[i].Start != c[j].Start {
			return c[i].Start < c[j].Start
		}
		return c[i].End > c[j].End
	})
	var out []DateMatch
	for _, d := range c {
		if n := len(out); n > 0 && d.Start < out[n-1].End {
			if l, pl := d.End-d.Start, out[n-1].End-out[n-1].Start; l > pl || l == pl && d.HasYear && !out[n-1].HasYear {
				out[n-1] = d
			}
			continue
		}
		out = append(out, d)
	}
	return out
}

func attachTimes(text string, ds []DateMatch) {
	times := Times(text)
	for i := range ds {
		if ds[i].HasTime {
			continue
		}
		limit := len(text)
		if i+1 < len(ds) {
			limit = ds[i+1].Start
		}
		for _, tm := range times {
			if tm.Start < ds[i].End || tm.Start >= limit {
				continue
			}
			gap := text[ds[i].End:tm.Start]
			if len(gap) > 24 || !dateTimeGlue.MatchString(gap) {
				break
			}
			d := ds[i].Time
			ds[i].Time = time.Date(d.Year(), d.Month(), d.Day(), tm.Hour, tm.Minute, 0, 0, d.Location())
			ds[i].HasTime = true
			ds[i].End = tm.End
			ds[i].Text = text[ds[i].Start:ds[i].End]
			break
		}
		// "tonight" without a time still says evening; leave the time unset
	}
}

func mkDate(y int, m time.Month, d int, loc *time.Location) (time.Time, bool) {
	if m < 1 || m > 12 || d < 1 || d > 31 || y < 1900 || y > 2200 {
		return time.Time{}, false
	}
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	if t.Day() != d { // 31 April
		return time.Time{}, false
	}
	return t, true
}

// inferYear picks the year for a day and month written without one: the
// weekday, if given, decides; otherwise the date between 60 days before ref
// and ~10 months after it.
func inferYear(m time.Month, d int, ref time.Time, weekday string) (time.Time, bool) {
	loc := ref.Location()
	day0 := time.Date(ref.Year(), ref.Month(), ref.Day(), 0, 0, 0, 0, loc)
	var cands []time.Time
	for _, y := range []int{ref.Year(), ref.Year() + 1, ref.Year() - 1} {
		if t, ok := mkDate(y, m, d, loc); ok {
			cands = append(cands, t)
		}
	}
	if len(cands) == 0 {
		return time.Time{}, false
	}
	if wd, ok := parseWeekday(weekday); ok {
		for _, t := range cands {
			if t.Weekday() == wd && !t.Before(day0.AddDate(0, 0, -120)) {
				return t, true
			}
		}
	}
	for _, t := range cands {
		if !t.Before(day0.AddDate(0, 0, -60)) && t.Before(day0.AddDate(0, 0, 306)) {
			return t, true
		}
	}
	return cands[0], true
}
