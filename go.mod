module github.com/ownyou/home

go 1.26
