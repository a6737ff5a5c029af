package extract

import "testing"

func TestMoneyReadsAmountsAndCurrencies(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"dollar with thousands", "Order total: $1,299.99", []string{"1299.99 USD"}},
		{"euro comma decimal suffix", "Gesamt: 12,50 €", []string{"12.50 EUR"}},
		{"euro prefix with dot thousands", "€1.299,00 incl. VAT", []string{"1299.00 EUR"}},
		{"pound", "Your room rate is £89 per night", []string{"89.00 GBP"}},
		{"code prefix", "Amount charged: USD 45.00", []string{"45.00 USD"}},
		{"code suffix", "Fare 312.40 EUR one way", []string{"312.40 EUR"}},
		{"canadian", "C$ 20.00 deposit", []string{"20.00 CAD"}},
		{"several in order", "Subtotal $20.00 Shipping $4.99 Total $24.99", []string{"20.00 USD", "4.99 USD", "24.99 USD"}},
		{"bare number is not money", "Quantity 3, room 1204, 2026", nil},
		{"thousands without decimals", "$2,500 budget", []string{"2500.00 USD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Money(tt.text)
			if len(got) != len(tt.want) {
				t.Fatalf("Money(%q) = %v, want %v", tt.text, got, tt.want)
			}
			for i := range got {
				if got[i].String() != tt.want[i] {
					t.Errorf("amount %d = %s, want %s", i, got[i], tt.want[i])
				}
			}
		})
	}
}
