module github.com/ownyou/home

go 1.26

require github.com/sashabaranov/go-openai v1.43.0

require github.com/robfig/cron/v3 v3.0.1
