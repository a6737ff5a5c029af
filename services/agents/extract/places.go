package extract

import (
	"regexp"
	"sort"
	"strings"
)

// Airport is a known airport.
type Airport struct {
	IATA, City, Name, Country string
}

// Place is an airport or city found in text.
type Place struct {
	Start, End int
	Text       string
	City       string // canonical city name
	IATA       string // set when the text named an airport code
}

// airports lists major airports; codes outside it are never guessed.
var airports = map[string]Airport{}

func init() {
	for _, line := range strings.Split(strings.TrimSpace(airportTable), "\n") {
		f := strings.Split(line, "|")
		airports[f[0]] = Airport{IATA: f[0], City: f[1], Name: f[2], Country: f[3]}
	}
	seen := map[string]bool{}
	for _, a := range airports {
		if !seen[a.City] {
			seen[a.City] = true
			cityNames = append(cityNames, a.City)
		}
	}
	for _, c := range extraCities {
		if !seen[c] {
			seen[c] = true
			cityNames = append(cityNames, c)
		}
	}
	sort.Slice(cityNames, func(i, j int) bool { return len(cityNames[i]) > len(cityNames[j]) })
	quoted := make([]string, len(cityNames))
	for i, c := range cityNames {
		quoted[i] = regexp.QuoteMeta(c)
	}
	cityRe = regexp.MustCompile(`\b(` + strings.Join(quoted, "|") + `)\b`)
}

var (
	cityNames []string
	cityRe    *regexp.Regexp
	codeRe    = regexp.MustCompile(`\b[A-Z]{3}\b`)
	// context that makes a three-letter code an airport: "(LHR)", "LHR → JFK",
	// "from LHR", "Depart: LHR".
	codeBefore  = regexp.MustCompile(`(?i)(?:\(|→|->|\b(?:from|to|depart(?:s|ure|ing)?|arriv(?:e|es|al|ing)|via|airport|origin|destination)\b[:\s]*)\s*$`)
	codeAfter   = regexp.MustCompile(`^\s*(?:\d{1,2}:\d{2}\s*)?(?:\)|→|->|–|—|-|>|/|\bto\b)`)
	codeBetween = regexp.MustCompile(`(?:→|->|–|—|-|>|/|\bto\b)\s*$`)
)

// LookupAirport returns the airport for an IATA code from the built-in table.
func LookupAirport(code string) (Airport, bool) {
	a, ok := airports[strings.ToUpper(code)]
	return a, ok
}

// Airports returns airport codes named in text. A known three-letter code
// counts only in airport context (parentheses, an arrow or dash between two
// codes, or after from/to/depart/arrive), so "THE", "USD" or "CEO" never do.
func Airports(text string) []Place {
	var out []Place
	ms := codeRe.FindAllStringIndex(text, -1)
	for i, m := range ms {
		code := text[m[0]:m[1]]
		a, ok := airports[code]
		if !ok {
			continue
		}
		before := text[max(0, m[0]-24):m[0]]
		after := text[m[1]:min(len(text), m[1]+16)]
		ctx := codeBefore.MatchString(before) || codeAfter.MatchString(after)
		if !ctx && i > 0 {
			p := ms[i-1]
			if _, known := airports[text[p[0]:p[1]]]; known && m[0]-p[1] < 6 && codeBetween.MatchString(text[p[1]:m[0]]) {
				ctx = true
			}
		}
		if !ctx {
			continue
		}
		out = append(out, Place{Start: m[0], End: m[1], Text: code, City: a.City, IATA: code})
	}
	return out
}

// Cities returns known city names written in text (case-sensitive, longest
// name first so "New York" wins over "York").
func Cities(text string) []Place {
	var out []Place
	for _, m := range cityRe.FindAllStringIndex(text, -1) {
		out = append(out, Place{Start: m[0], End: m[1], Text: text[m[0]:m[1]], City: text[m[0]:m[1]]})
	}
	return out
}

// Places returns airports and cities in text in order of appearance; a city
// written next to its airport code ("London Heathrow (LHR)") is reported once,
// as the airport.
func Places(text string) []Place {
	ap := Airports(text)
	var out []Place
	out = append(out, ap...)
	for _, c := range Cities(text) {
		dup := false
		for _, a := range ap {
			if a.City == c.City && a.Start >= c.End && a.Start-c.End < 30 {
				dup = true
				break
			}
			if c.Start < a.End && c.End > a.Start {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out
}

var extraCities = []string{
	"Manchester", "Birmingham", "Edinburgh", "Glasgow", "York", "Bristol", "Liverpool", "Oxford", "Cambridge", "Brighton",
	"Lyon", "Marseille", "Bordeaux", "Strasbourg", "Lille", "Cologne", "Hamburg", "Stuttgart", "Düsseldorf", "Leipzig",
	"Florence", "Venice", "Naples", "Bologna", "Turin", "Seville", "Valencia", "Porto", "Bruges", "Antwerp", "Rotterdam",
	"Utrecht", "The Hague", "Salzburg", "Basel", "Bern", "Lausanne", "Kraków", "Gdańsk", "Brooklyn", "Philadelphia",
	"Washington", "Baltimore", "Portland", "Sacramento", "San Diego", "San Jose", "Oakland", "Kyoto", "Osaka", "Nice",
}

// IATA|city|airport|country
const airportTable = `
LHR|London|Heathrow|GB
LGW|London|Gatwick|GB
STN|London|Stansted|GB
LTN|London|Luton|GB
LCY|London|London City|GB
MAN|Manchester|Manchester|GB
EDI|Edinburgh|Edinburgh|GB
GLA|Glasgow|Glasgow|GB
BHX|Birmingham|Birmingham|GB
BRS|Bristol|Bristol|GB
DUB|Dublin|Dublin|IE
CDG|Paris|Charles de Gaulle|FR
ORY|Paris|Orly|FR
NCE|Nice|Côte d'Azur|FR
LYS|Lyon|Saint-Exupéry|FR
MRS|Marseille|Provence|FR
AMS|Amsterdam|Schiphol|NL
BRU|Brussels|Brussels|BE
FRA|Frankfurt|Frankfurt|DE
MUC|Munich|Munich|DE
BER|Berlin|Brandenburg|DE
HAM|Hamburg|Hamburg|DE
DUS|Düsseldorf|Düsseldorf|DE
CGN|Cologne|Cologne Bonn|DE
STR|Stuttgart|Stuttgart|DE
ZRH|Zurich|Zurich|CH
GVA|Geneva|Geneva|CH
BSL|Basel|EuroAirport|CH
VIE|Vienna|Vienna|AT
PRG|Prague|Václav Havel|CZ
WAW|Warsaw|Chopin|PL
KRK|Kraków|John Paul II|PL
BUD|Budapest|Ferenc Liszt|HU
CPH|Copenhagen|Kastrup|DK
ARN|Stockholm|Arlanda|SE
OSL|Oslo|Gardermoen|NO
HEL|Helsinki|Helsinki-Vantaa|FI
KEF|Reykjavik|Keflavík|IS
MAD|Madrid|Barajas|ES
BCN|Barcelona|El Prat|ES
AGP|Malaga|Málaga|ES
PMI|Palma|Palma de Mallorca|ES
SVQ|Seville|Seville|ES
VLC|Valencia|Valencia|ES
LIS|Lisbon|Humberto Delgado|PT
OPO|Porto|Francisco Sá Carneiro|PT
FCO|Rome|Fiumicino|IT
CIA|Rome|Ciampino|IT
MXP|Milan|Malpensa|IT
LIN|Milan|Linate|IT
VCE|Venice|Marco Polo|IT
FLR|Florence|Peretola|IT
NAP|Naples|Capodichino|IT
ATH|Athens|Eleftherios Venizelos|GR
IST|Istanbul|Istanbul|TR
SAW|Istanbul|Sabiha Gökçen|TR
DXB|Dubai|Dubai|AE
AUH|Abu Dhabi|Abu Dhabi|AE
DOH|Doha|Hamad|QA
TLV|Tel Aviv|Ben Gurion|IL
CAI|Cairo|Cairo|EG
JNB|Johannesburg|O. R. Tambo|ZA
CPT|Cape Town|Cape Town|ZA
NBO|Nairobi|Jomo Kenyatta|KE
JFK|New York|John F. Kennedy|US
EWR|New York|Newark Liberty|US
LGA|New York|LaGuardia|US
BOS|Boston|Logan|US
IAD|Washington|Dulles|US
DCA|Washington|Reagan National|US
PHL|Philadelphia|Philadelphia|US
ORD|Chicago|O'Hare|US
MDW|Chicago|Midway|US
ATL|Atlanta|Hartsfield-Jackson|US
MIA|Miami|Miami|US
FLL|Fort Lauderdale|Fort Lauderdale|US
MCO|Orlando|Orlando|US
DFW|Dallas|Dallas/Fort Worth|US
IAH|Houston|George Bush|US
AUS|Austin|Austin-Bergstrom|US
DEN|Denver|Denver|US
PHX|Phoenix|Sky Harbor|US
LAS|Las Vegas|Harry Reid|US
LAX|Los Angeles|Los Angeles|US
SFO|San Francisco|San Francisco|US
SJC|San Jose|San José Mineta|US
OAK|Oakland|Oakland|US
SAN|San Diego|San Diego|US
SEA|Seattle|Seattle-Tacoma|US
PDX|Portland|Portland|US
MSP|Minneapolis|Minneapolis-Saint Paul|US
DTW|Detroit|Detroit Metro|US
HNL|Honolulu|Daniel K. Inouye|US
YYZ|Toronto|Pearson|CA
YUL|Montreal|Trudeau|CA
YVR|Vancouver|Vancouver|CA
MEX|Mexico City|Benito Juárez|MX
CUN|Cancún|Cancún|MX
GRU|São Paulo|Guarulhos|BR
GIG|Rio de Janeiro|Galeão|BR
EZE|Buenos Aires|Ezeiza|AR
SCL|Santiago|Arturo Merino Benítez|CL
BOG|Bogotá|El Dorado|CO
LIM|Lima|Jorge Chávez|PE
NRT|Tokyo|Narita|JP
HND|Tokyo|Haneda|JP
KIX|Osaka|Kansai|JP
ICN|Seoul|Incheon|KR
PEK|Beijing|Capital|CN
PVG|Shanghai|Pudong|CN
HKG|Hong Kong|Hong Kong|HK
TPE|Taipei|Taoyuan|TW
SIN|Singapore|Changi|SG
BKK|Bangkok|Suvarnabhumi|TH
KUL|Kuala Lumpur|Kuala Lumpur|MY
CGK|Jakarta|Soekarno-Hatta|ID
DPS|Bali|Ngurah Rai|ID
MNL|Manila|Ninoy Aquino|PH
DEL|Delhi|Indira Gandhi|IN
BOM|Mumbai|Chhatrapati Shivaji|IN
BLR|Bangalore|Kempegowda|IN
SYD|Sydney|Kingsford Smith|AU
MEL|Melbourne|Tullamarine|AU
BNE|Brisbane|Brisbane|AU
AKL|Auckland|Auckland|NZ
`
