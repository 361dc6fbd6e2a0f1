package datasets
import ("testing";"fmt")
func TestFam(t *testing.T) {
	for _, f := range PromptFamilies() { fmt.Printf("%-26s %-6s %-14s %-19s %d %v\n", f.Name, f.Category, f.AtlasID, f.Goal, f.Templates, f.Converters) }
	fmt.Println(ConverterNames())
}
