module zfaas.dev/go

go 1.19
