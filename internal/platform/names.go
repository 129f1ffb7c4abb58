package platform

import (
	"fmt"
	"math/rand/v2"
	"regexp"
)

// appName is Heroku's app name rule: 3 to 30 characters, lowercase letters,
// digits and dashes, starting with a letter and ending with a letter or digit.
var appName = regexp.MustCompile(`^[a-z][a-z0-9-]{1,28}[a-z0-9]$`)

func validAppName(name string) error {
	if len(name) > 30 {
		return errorf(KindInvalid, "Name is too long (maximum is 30 characters)")
	}
	if len(name) < 3 {
		return errorf(KindInvalid, "Name is too short (minimum is 3 characters)")
	}
	if !appName.MatchString(name) {
		return errorf(KindInvalid, "Name must start with a letter, end with a letter or digit and can only contain lowercase letters, digits, and dashes.")
	}
	return nil
}

var (
	adjectives = []string{"autumn", "hidden", "bitter", "misty", "silent", "empty", "dry", "dark", "summer",
		"icy", "delicate", "quiet", "white", "cool", "spring", "winter", "patient", "twilight", "dawn",
		"crimson", "wispy", "weathered", "blue", "billowing", "broken", "cold", "damp", "falling",
		"frosty", "green", "long", "late", "lingering", "bold", "little", "morning", "muddy", "old",
		"red", "rough", "still", "small", "sparkling", "shy", "wandering", "withered", "wild", "black",
		"young", "holy", "solitary", "fragrant", "aged", "snowy", "proud", "floral", "restless", "divine",
		"polished", "ancient", "purple", "lively", "nameless", "shrouded", "radiant", "serene", "gentle"}
	nouns = []string{"waterfall", "river", "breeze", "moon", "rain", "wind", "sea", "morning", "snow",
		"lake", "sunset", "pine", "shadow", "leaf", "dawn", "glitter", "forest", "hill", "cloud", "meadow",
		"sun", "glade", "bird", "brook", "butterfly", "bush", "dew", "dust", "field", "fire", "flower",
		"firefly", "feather", "grass", "haze", "mountain", "night", "pond", "darkness", "snowflake",
		"silence", "sound", "sky", "shape", "surf", "thunder", "violet", "water", "wildflower", "wave",
		"resonance", "wood", "dream", "cherry", "tree", "fog", "frost", "voice", "paper", "frog", "smoke",
		"star", "falls", "harbor", "reef", "canyon", "island", "peak", "ridge", "plains", "springs"}
)

// generateName returns a Heroku-style name such as "misty-harbor-48213".
func generateName() string {
	return fmt.Sprintf("%s-%s-%05d", adjectives[rand.IntN(len(adjectives))], nouns[rand.IntN(len(nouns))], rand.IntN(100000))
}
