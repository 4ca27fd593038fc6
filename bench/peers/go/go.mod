module printerfacts-bench-go

go 1.19
