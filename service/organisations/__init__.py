"""Partner organisations, their API clients and their legal bases to read passports."""
