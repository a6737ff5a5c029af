package bus

// Every stream, subject and durable consumer of the system is defined in this
// file and nowhere else.

// Stream names.
const (
	StreamEmails     = "EMAILS"     // emails.>: one email's progress through the stages
	StreamMissions   = "MISSIONS"   // missions.>: mission cards created or changed
	StreamImports    = "IMPORTS"    // imports.>: file imports waiting for the ingest service
	StreamDeadLetter = "DEADLETTER" // deadletter.<stage>: messages a stage gave up on
)

// Durable consumer names, one per stage; all replicas of a stage share it.
const (
	ConsumerIngestImports = "ingest-imports"
	ConsumerEmbedder      = "embedder"
	ConsumerClassifier    = "classifier"
	ConsumerAgents        = "agents"
	ConsumerAgentRequests = "agent-requests" // user requests for the agents service
)

// ObjectBucketImports holds uploaded files until the ingest service has read them.
const ObjectBucketImports = "imports"

// streamSpec describes one stream the bus creates at start.
type streamSpec struct {
	Name     string
	Subjects []string
	// WorkQueue streams delete a message once it is acknowledged.
	WorkQueue bool
}

// streams lists every stream, created or updated by Connect.
func streams() []streamSpec {
	return []streamSpec{
		{Name: StreamEmails, Subjects: []string{"emails.>"}},
		{Name: StreamMissions, Subjects: []string{"missions.>"}},
		{Name: StreamImports, Subjects: []string{"imports.>"}, WorkQueue: true},
		{Name: StreamDeadLetter, Subjects: []string{"deadletter.>"}},
	}
}

// Topic binds a subject to its payload type and schema version.
type Topic[T any] struct {
	Subject string
	Stream  string
	Version int
}

// Topics of the pipeline. Each payload type names the entity it is about
// through Key, which the dead-letter record and the pipeline view use.
var (
	EmailsIngested    = Topic[EmailIngested]{Subject: "emails.ingested", Stream: StreamEmails, Version: 1}
	EmailsEmbedded    = Topic[EmailEmbedded]{Subject: "emails.embedded", Stream: StreamEmails, Version: 1}
	EmailsClassified  = Topic[EmailClassified]{Subject: "emails.classified", Stream: StreamEmails, Version: 1}
	MissionsCreated   = Topic[MissionEvent]{Subject: "missions.created", Stream: StreamMissions, Version: 1}
	MissionsUpdated   = Topic[MissionEvent]{Subject: "missions.updated", Stream: StreamMissions, Version: 1}
	MissionsRequested = Topic[MissionRequest]{Subject: "missions.requested", Stream: StreamMissions, Version: 1}
	ImportsRequested  = Topic[ImportRequested]{Subject: "imports.requested", Stream: StreamImports, Version: 1}
)

// DeadLetterSubject is where a stage's dead letters are published.
func DeadLetterSubject(stage string) string { return "deadletter." + stage }

// Stage is one step of the email pipeline as the pipeline view shows it.
type Stage struct {
	Name     string // stage name, also the email_stages.stage value
	Consumer string // durable consumer feeding it; empty for ingest
	Subject  string // subject it consumes
}

// Stages lists the pipeline in order: ingest → embedder → classifier → agents.
func Stages() []Stage {
	return []Stage{
		{Name: "ingest"},
		{Name: ConsumerEmbedder, Consumer: ConsumerEmbedder, Subject: EmailsIngested.Subject},
		{Name: ConsumerClassifier, Consumer: ConsumerClassifier, Subject: EmailsEmbedded.Subject},
		{Name: ConsumerAgents, Consumer: ConsumerAgents, Subject: EmailsClassified.Subject},
	}
}

// EmailIngested says an email is stored and ready for embedding.
type EmailIngested struct {
	EmailID  string `json:"email_id"`
	SourceID string `json:"source_id,omitempty"`
	ImportID string `json:"import_id,omitempty"`
}

// Key returns the email id.
func (e EmailIngested) Key() string { return e.EmailID }

// EmailEmbedded says an email's chunk vectors are stored.
type EmailEmbedded struct {
	EmailID string `json:"email_id"`
	Model   string `json:"model,omitempty"`
	Chunks  int    `json:"chunks,omitempty"`
}

// Key returns the email id.
func (e EmailEmbedded) Key() string { return e.EmailID }

// Category is one taxonomy category assigned to an email.
type Category struct {
	Taxonomy   string  `json:"taxonomy"`
	ID         string  `json:"id"`
	Confidence float64 `json:"confidence"`
}

// EmailClassified says an email's categories are stored and the profile updated.
type EmailClassified struct {
	EmailID    string     `json:"email_id"`
	Categories []Category `json:"categories,omitempty"`
}

// Key returns the email id.
func (e EmailClassified) Key() string { return e.EmailID }

// MissionEvent says a mission card was created or changed.
type MissionEvent struct {
	MissionID string `json:"mission_id"`
	Agent     string `json:"agent"`
	Status    string `json:"status"`
}

// Key returns the mission id.
func (e MissionEvent) Key() string { return e.MissionID }

// ImportRequested asks the ingest service to import an uploaded file held in the
// imports object bucket under Object.
type ImportRequested struct {
	ImportID string `json:"import_id"`
	Object   string `json:"object"`
	Filename string `json:"filename"`
}

// Key returns the import id.
func (e ImportRequested) Key() string { return e.ImportID }

// Embedding requests: core NATS request/reply (not JetStream) answered by the
// embedder service; replicas share the queue group, so each request is
// answered once. Requests that the embedder cannot take at once are refused
// with EmbedErrOverloaded instead of queuing without bound.
const (
	// SubjectEmbed carries an EmbedRequest; the reply is an EmbedReply.
	SubjectEmbed = "embed.request"
	// QueueEmbedder is the queue group of the embedder replicas.
	QueueEmbedder = "embedder"
)

// EmbedRequest asks for one vector per text (queries, taxonomy labels). An
// empty Texts asks only for the model id and dimension.
type EmbedRequest struct {
	Texts []string `json:"texts"`
}

// EmbedReply answers an EmbedRequest: vectors in request order, or Error.
type EmbedReply struct {
	Model   string      `json:"model,omitempty"`
	Dim     int         `json:"dim,omitempty"`
	Vectors [][]float32 `json:"vectors,omitempty"`
	Error   *EmbedError `json:"error,omitempty"`
}

// EmbedError is why an embedding request failed; Code is one of the EmbedErr… values.
type EmbedError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Embedding error codes.
const (
	EmbedErrBadRequest = "bad_request" // malformed JSON, too many or too long texts: do not retry
	EmbedErrOverloaded = "overloaded"  // the queue is full: retry later
	EmbedErrInternal   = "internal"    // the model failed: retry later
)

// MissionRequest asks the agents service to answer the user's free-text
// request stored in agent_requests under RequestID.
type MissionRequest struct {
	RequestID string `json:"request_id"`
}

// Key returns the request id.
func (e MissionRequest) Key() string { return e.RequestID }
